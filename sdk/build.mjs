// Builds the SDK package in the current directory: ESM and CJS (its
// dependencies stay imports), with `--iife Name` also a minified script-tag
// build `dist/<package>.iife.js` with everything inlined, then the type
// declarations.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const external = Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies });
const iife = process.argv.indexOf("--iife");
const platform = pkg.name === "@sightline/node" ? "node" : "neutral";

rmSync("dist", { recursive: true, force: true });
const common = { entryPoints: ["src/index.ts"], bundle: true, target: "es2019", platform, logLevel: "warning" };
await build({ ...common, format: "esm", outfile: "dist/index.mjs", external });
await build({ ...common, format: "cjs", outfile: "dist/index.cjs", external });
if (iife > 0) {
  const name = process.argv[iife + 1];
  await build({ ...common, format: "iife", globalName: name, minify: true, outfile: `dist/${name.toLowerCase()}.iife.js` });
}
execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
