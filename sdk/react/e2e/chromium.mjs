// Drives the React app in Debian's Chromium: a click that tracks, a
// single-page-app navigation, a click that breaks a component (the error
// boundary must show its fallback), then leaves the page.
// Usage: node chromium.mjs <page URL>.
import { chromium } from "playwright-core";

const [pageUrl] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage();
  await page.goto(pageUrl, { waitUntil: "load" });
  await page.click("#signup");
  await page.evaluate(() => history.pushState({}, "", "/cart"));
  await page.click("#break");
  await page.waitForSelector("#fallback", { timeout: 5000 });
  await page.waitForTimeout(500);
  await page.goto("about:blank");
  await page.waitForTimeout(500);
} finally {
  await browser.close();
}
