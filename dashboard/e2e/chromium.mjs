// Logs into the dashboard in Debian's Chromium, reads today's numbers,
// sends one more page view to the ingest API, waits for the overview to
// show it without a reload (the live feed), filters the page by a click on
// that page in the pages table, opens an error's group page (its frames
// source-mapped), and reads the LCP p75 on the performance page. Fails on
// any console error but the 401 of asking for a session before logging in
// (a Content-Security-Policy violation is one).
// Then settings: as an admin it changes them, as a viewer it only sees them.
// Alerting in settings: a webhook channel tested, a rule on it added.
// Usage: node chromium.mjs <base URL> <admin email> <password> <ingest key> <viewer email> <password> <webhook URL>.
import { chromium } from "playwright-core";

const [base, email, password, key, viewerEmail, viewerPassword, hookUrl] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${base}/`, { waitUntil: "load" });
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  const metric = page.locator("#metric-pageviews");
  await metric.waitFor({ timeout: 10_000 });
  const before = Number(await metric.textContent());
  const cards = {};
  for (const id of ["visitors", "pageviews", "sessions", "bounce", "duration"]) cards[id] = await page.locator(`#metric-${id}`).textContent();
  const sent = Date.now();
  const response = await fetch(`${base}/api/v1/ingest?key=${key}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ events: [{ type: "pageview", url: "https://shop.example/live", anonymous_id: "live-visitor" }] }),
  });
  if (response.status !== 202) throw new Error(`ingest answered ${response.status}`);
  await page.waitForFunction((n) => Number(document.querySelector("#metric-pageviews")?.textContent) === n, before + 1, {
    timeout: 5_000,
  });
  const movedMs = Date.now() - sent;
  const chart = await page.locator("#live-chart canvas").count();
  // A click on a page in the table filters the whole page by it.
  await page.locator("#table-page button", { hasText: "/live" }).click();
  await page.waitForFunction(() => document.querySelector("#metric-pageviews")?.textContent === "1", null, { timeout: 5_000 });
  const chip = await page.locator(".chip").textContent();
  // The filter saved as a segment, removed, and applied again from it.
  await page.fill("#segment-name", "Live page");
  await page.click("#save-segment");
  await page.locator("#segment option", { hasText: "Live page" }).waitFor({ state: "attached", timeout: 5_000 });
  await page.click(".chip");
  await page.waitForFunction(() => document.querySelector("#metric-pageviews")?.textContent === "2", null, { timeout: 5_000 });
  const segmentId = await page.locator("#segment option", { hasText: "Live page" }).getAttribute("value");
  await page.selectOption("#segment", segmentId);
  await page.waitForFunction(() => document.querySelector("#metric-pageviews")?.textContent === "1", null, { timeout: 5_000 });
  const segmentChip = await page.locator(".chip").textContent();

  // An error, then its group in the errors list and on its own page.
  // Minified names and places; release r1's source map (uploaded by the
  // test) maps them back to src/cart.ts.
  const stack = "TypeError: cart is undefined\n    at a (https://shop.example/static/app.js:10:5)\n    at b (https://shop.example/static/app.js:20:3)";
  const error = { type: "error", url: "https://shop.example/cart", anonymous_id: "v1", error_type: "TypeError", message: "cart is undefined", stack, release: "r1" };
  const errorSent = await fetch(`${base}/api/v1/ingest?key=${key}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ events: [error] }),
  });
  if (errorSent.status !== 202) throw new Error(`ingest answered ${errorSent.status}`);
  await page.waitForTimeout(300);
  await page.click("#nav-errors");
  await page.locator("#error-groups svg.spark").first().waitFor({ timeout: 5_000 });
  const sparkline = await page.locator("#error-groups svg.spark").first().getAttribute("aria-label");
  await page.locator("#error-groups button", { hasText: "TypeError: cart is undefined" }).click();
  const errorTitle = await page.locator("#group-title").textContent();
  await page.locator("#stack li").first().waitFor({ timeout: 5_000 });
  const frames = await page.locator("#stack li strong").allTextContents();
  const frameFile = await page.locator("#stack li > div > span.muted").first().textContent();
  const contextLine = await page.locator("#stack li mark").first().textContent();
  const groupUrl = page.url();
  const latestEvents = await page.locator("#latest-events tbody tr").count();

  // Custom events: the explorer filters by a property value with a click.
  const custom = ["pro", "pro", "free"].map((plan, i) => ({ type: "event", name: "signup", props: { plan }, url: "https://shop.example/", anonymous_id: `e${i}` }));
  const customSent = await fetch(`${base}/api/v1/ingest?key=${key}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ events: custom }),
  });
  if (customSent.status !== 202) throw new Error(`ingest answered ${customSent.status}`);
  await page.waitForTimeout(300);
  await page.click("#nav-events");
  await page.waitForFunction(() => document.querySelector("#events-total")?.textContent === "3", null, { timeout: 5_000 });
  await page.locator("#prop-plan button", { hasText: "pro" }).click();
  await page.waitForFunction(() => document.querySelector("#events-total")?.textContent === "2", null, { timeout: 5_000 });
  const proSignups = Number(await page.locator("#events-total").textContent());
  // The property filter saved as a segment, cleared, and applied again.
  await page.fill("#segment-name", "Pro signups");
  await page.click("#save-segment");
  await page.locator("#segment option", { hasText: "Pro signups" }).waitFor({ state: "attached", timeout: 5_000 });
  await page.click(".chip");
  await page.waitForFunction(() => document.querySelector("#events-total")?.textContent === "3", null, { timeout: 5_000 });
  const proSegment = await page.locator("#segment option", { hasText: "Pro signups" }).getAttribute("value");
  await page.selectOption("#segment", proSegment);
  await page.waitForFunction(() => document.querySelector("#events-total")?.textContent === "2", null, { timeout: 5_000 });
  // The overview's segment (a page) applies here too.
  await page.selectOption("#segment", segmentId);
  await page.waitForFunction(() => document.querySelector("#events-total")?.textContent === "0", null, { timeout: 5_000 });
  const eventsChip = await page.locator(".chip").allTextContents();

  // Vitals, then the performance page's LCP p75.
  const lcp = [1200, 1800, 2600, 4200].map((value, i) => ({ type: "vital", name: "LCP", value, url: "https://shop.example/", anonymous_id: `v${i}` }));
  const vitalsSent = await fetch(`${base}/api/v1/ingest?key=${key}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ events: lcp }),
  });
  if (vitalsSent.status !== 202) throw new Error(`ingest answered ${vitalsSent.status}`);
  await page.waitForTimeout(300);
  await page.click("#nav-performance");
  await page.waitForFunction(() => /ms/.test(document.querySelector("#vital-LCP .number")?.textContent ?? ""), null, { timeout: 5_000 });
  const lcpP75 = await page.locator("#vital-LCP .number").textContent();
  await page.locator("#vitals-pages tbody tr").first().waitFor({ timeout: 5_000 });
  const lcpPages = await page.locator("#vitals-pages tbody tr").count();
  // The theme: dark on request, remembered across a reload.
  await page.selectOption("#theme", "dark");
  await page.waitForFunction(() => document.documentElement.dataset.theme === "dark", null, { timeout: 5_000 });
  await page.reload({ waitUntil: "load" });
  await page.locator("#theme").waitFor({ timeout: 5_000 });
  const theme = await page.evaluate(() => [document.documentElement.dataset.theme, getComputedStyle(document.body).backgroundColor]);

  // Settings, as an admin: allowed origins, an ingest key, a secret key.
  await page.click("#nav-settings");
  await page.fill("#allowed-origins", "https://shop.example");
  await page.click("#save-project");
  await page.waitForFunction(() => document.querySelector("#settings-message")?.textContent === "Saved.", null, { timeout: 5_000 });
  await page.fill("#ingest-key-name", "landing");
  await page.click("#add-ingest-key");
  await page.waitForFunction(() => document.querySelectorAll("#ingest-keys tbody tr").length === 2, null, { timeout: 5_000 });
  await page.fill("#secret-key-name", "ci");
  await page.click("#add-secret-key");
  await page.locator("#new-secret code").waitFor({ timeout: 5_000 });
  const secret = await page.locator("#new-secret code").textContent();

  // Alerting: a webhook channel, its test message, and a rule sending to it.
  await page.fill("#channel-name", "Ops hook");
  await page.selectOption("#channel-kind", "webhook");
  await page.fill("#channel-url", hookUrl);
  await page.fill("#channel-secret", "a webhook secret of some length");
  await page.click("#save-channel");
  await page.waitForFunction(() => document.querySelectorAll("#channels tbody tr").length === 1, null, { timeout: 5_000 });
  const channelRow = await page.locator("#channels tbody tr").first().innerText();
  await page.getByRole("button", { name: "Send a test to Ops hook" }).click();
  await page.waitForFunction(() => document.querySelector("#settings-message")?.textContent === "Test message delivered.", null, { timeout: 10_000 });
  await page.fill("#alert-name", "Any error");
  await page.fill("#alert-threshold", "0");
  await page.fill("#alert-window", "3600");
  await page.getByRole("checkbox", { name: "Ops hook" }).check();
  await page.click("#save-alert");
  await page.waitForFunction(() => document.querySelectorAll("#alerts tbody tr").length === 1, null, { timeout: 5_000 });
  // Another error now: the rule fires, and says so after a reload.
  const crossing = await fetch(`${base}/api/v1/ingest?key=${key}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ events: [{ ...error, anonymous_id: "v2" }] }),
  });
  if (crossing.status !== 202) throw new Error(`ingest answered ${crossing.status}`);
  await page.waitForTimeout(1_500);
  await page.reload({ waitUntil: "load" });
  await page.waitForFunction(() => document.querySelector("#alerts tbody tr .status-firing") !== null, null, { timeout: 5_000 });
  const alertRow = await page.locator("#alerts tbody tr").first().innerText();

  // Settings, as a viewer: everything shown, nothing to change it with.
  const viewer = await browser.newPage();
  viewer.on("pageerror", (e) => problems.push(String(e)));
  await viewer.goto(`${base}/settings`, { waitUntil: "load" });
  await viewer.fill("#email", viewerEmail);
  await viewer.fill("#password", viewerPassword);
  await viewer.click("button[type=submit]");
  await viewer.locator("#allowed-origins-text").waitFor({ timeout: 5_000 });
  const viewerSees = await viewer.locator("#allowed-origins-text").textContent();
  const viewerControls = await viewer.locator("#settings form, #settings button, #settings select").count();
  await viewer.locator("#alerts tbody tr").first().waitFor({ timeout: 5_000 });
  const viewerAlerts = await viewer.locator("#alerts tbody tr").count();

  // Before login, asking for the session is answered 401: expected.
  const unexpected = problems.filter((p) => !p.includes("status of 401"));
  if (unexpected.length > 0) throw new Error(`console errors: ${unexpected.join("\n")}`);
  console.log(JSON.stringify({ channelRow, alertRow, viewerAlerts, eventsChip, cards, frameFile, contextLine, before, after: before + 1, movedMs, chart, chip, errorTitle, frames, url: groupUrl, lcpP75, lcpPages, proSignups, secret, viewerSees, viewerControls, sparkline, segmentChip, theme, latestEvents }));
} finally {
  await browser.close();
}
