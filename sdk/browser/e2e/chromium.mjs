// Drives Debian's Chromium through a page that uses the script-tag build:
// a page view, a single-page-app navigation, a custom event, an uncaught
// error, an unhandled rejection and a click, then leaves the page so the
// queue goes out with sendBeacon. Usage: node chromium.mjs <page URL>.
import { chromium } from "playwright-core";

const [pageUrl] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("response", (r) => r.status() >= 400 && problems.push(`${r.request().method()} ${r.url()}: ${r.status()}`));
  await page.goto(pageUrl, { waitUntil: "load" });
  await page.evaluate(() => history.pushState({}, "", "/cart"));
  await page.evaluate(() => window.Sightline.track("signup", { plan: "pro" }));
  await page.evaluate(() => setTimeout(() => { throw new TypeError("cart is undefined"); }));
  await page.evaluate(() => { Promise.reject(new RangeError("quantity out of range")); });
  await page.mouse.click(10, 10);
  await page.waitForTimeout(500);
  // Leaving: pagehide and visibilitychange send the rest with a beacon.
  await page.goto("about:blank");
  await page.waitForTimeout(500);
  const unexpected = problems.filter((p) => !/cart is undefined|quantity out of range/.test(p));
  if (unexpected.length > 0) throw new Error(`console errors: ${unexpected.join("\n")}`);
} finally {
  await browser.close();
}
