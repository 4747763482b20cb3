// The built package: its size budget, and that it loads and stays quiet
// outside a browser (server-side rendering imports it too).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";
import { gzipSync } from "node:zlib";

const dist = new URL("../dist/", import.meta.url);

test("the script-tag build stays under 10 KB gzipped", () => {
  const bytes = gzipSync(readFileSync(new URL("sightline.iife.js", dist)), { level: 9 }).length;
  assert.ok(bytes < 10 * 1024, `sightline.iife.js is ${bytes} bytes gzipped`);
});

test("the script-tag build exposes the API on window.Sightline", () => {
  const window = {};
  new Function("window", "self", "globalThis", readFileSync(new URL("sightline.iife.js", dist), "utf8") + ";window.Sightline = Sightline;")(window, window, window);
  for (const name of ["init", "track", "pageview", "captureException", "flush", "optOut", "optIn"]) {
    assert.equal(typeof window.Sightline[name], "function", name);
  }
});

for (const [format, load] of [
  ["ESM", () => import(new URL("index.mjs", dist).href)],
  ["CJS", async () => createRequire(import.meta.url)(new URL("index.cjs", dist).pathname)],
]) {
  test(`the ${format} build loads outside a browser and every call is a quiet no-op`, async () => {
    const sdk = await load();
    assert.equal(sdk.init({ key: "pk_x", endpoint: "http://127.0.0.1:1" }), undefined);
    assert.equal(sdk.track("signup", { plan: "pro" }), undefined);
    assert.equal(sdk.captureException(new Error("x")), undefined);
    assert.equal(sdk.pageview(), undefined);
    await sdk.flush();
  });
}
