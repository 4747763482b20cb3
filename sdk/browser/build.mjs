// Builds @sightline/browser: ESM and CJS for bundlers (web-vitals stays a
// dependency), the script-tag build `dist/sightline.iife.js` exposing
// `window.Sightline` (everything inlined, minified), and the type
// declarations.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
const common = { entryPoints: ["src/index.ts"], bundle: true, target: "es2019", logLevel: "warning" };
await build({ ...common, format: "esm", outfile: "dist/index.mjs", external: ["web-vitals"] });
await build({ ...common, format: "cjs", outfile: "dist/index.cjs", external: ["web-vitals"] });
await build({ ...common, format: "iife", globalName: "Sightline", minify: true, outfile: "dist/sightline.iife.js" });
execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
