// The generated types are those of the checked-in OpenAPI document (the
// server's own test checks that document against the server).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";

it("src/openapi.ts is generated from the current sdk/openapi.json", () => {
  const sdk = new URL("../../", import.meta.url).pathname;
  const fresh = join(mkdtempSync(join(tmpdir(), "sightline-openapi-")), "openapi.ts");
  execFileSync(join(sdk, "node_modules/.bin/openapi-typescript"), [join(sdk, "openapi.json"), "-o", fresh], { stdio: "pipe" });
  const checkedIn = readFileSync(new URL("../src/openapi.ts", import.meta.url), "utf8");
  expect(checkedIn, "stale: run `npm run generate --prefix sdk`").toBe(readFileSync(fresh, "utf8"));
});
