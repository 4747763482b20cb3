// Dashboards in Debian's Chromium: an admin makes a dashboard, adds three
// widgets, drags one by its title bar to the top, widens one with the
// keyboard, removes one, and finds the layout kept after a reload; a viewer
// sees the same grid fixed, with no edit control. Then a stored-XSS attempt:
// event fields holding markup are shown as text on every page and never run.
// Screenshots of each page go to the artifacts folder.
// Usage: node dashboards.mjs <base URL> <admin email> <password> <ingest key> <viewer email> <password> <artifacts dir>.
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, email, password, key, viewerEmail, viewerPassword, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
const problems = [];
const result = {};
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const accessibility = [];

/** axe-core's WCAG 2 A and AA checks of the page as it is (labels, names,
 * contrast, landmarks ...); each violation is noted with the page's name. */
async function audit(page, name) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  accessibility.push(...found.map((v) => `${name}: ${v}`));
}

async function logIn(who, pass, path) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => m.type() === "error" && !m.text().includes("status of 401") && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("dialog", (d) => d.accept());
  await page.goto(`${base}${path}`, { waitUntil: "load" });
  await page.locator("#email").waitFor({ timeout: 5_000 });
  await audit(page, "login");
  await page.screenshot({ path: join(artifacts, "login.png") });
  await page.fill("#email", who);
  await page.fill("#password", pass);
  await page.click("button[type=submit]");
  return page;
}

/** Each widget's kind and place, top to bottom, left to right. */
const layout = (page) =>
  page.$$eval("#grid .grid-stack-item", (items) =>
    items
      .map((el) => ({ widget: el.dataset.widget, x: Number(el.getAttribute("gs-x") ?? 0), y: Number(el.getAttribute("gs-y") ?? 0), w: Number(el.getAttribute("gs-w") ?? 1), h: Number(el.getAttribute("gs-h") ?? 1) }))
      .sort((a, b) => a.y - b.y || a.x - b.x),
  );
const saved = (page) => page.waitForFunction(() => document.querySelector("#dashboard-status")?.textContent === "Saved.", null, { timeout: 5_000 });

async function ingest(events) {
  const response = await fetch(`${base}/api/v1/ingest?key=${key}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ events }),
  });
  if (response.status !== 202) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
}

try {
  const page = await logIn(email, password, "/dashboards");
  await page.locator("#dashboard-name").waitFor({ timeout: 10_000 });
  await page.fill("#dashboard-name", "Launch");
  await page.click("#create-dashboard");
  await page.locator("#dashboard option", { hasText: "Launch" }).waitFor({ state: "attached", timeout: 5_000 });
  for (const choice of ["number:visitors", "chart:pageviews", "table:page"]) {
    const count = await page.locator("#grid .grid-stack-item").count();
    await page.selectOption("#widget-choice", choice);
    await page.click("#add-widget");
    await page.waitForFunction((n) => document.querySelectorAll("#grid .grid-stack-item").length === n, count + 1, { timeout: 5_000 });
    await saved(page);
  }
  await page.locator('[data-widget="number:visitors"] .widget-number').waitFor({ timeout: 5_000 });
  result.visitorsWidget = await page.locator('[data-widget="number:visitors"] .widget-number').textContent();
  result.added = await layout(page);

  // Drag the pages table by its title bar above the others.
  const head = page.locator('[data-widget="table:page"] .widget-head h3');
  const from = await head.boundingBox();
  const grid = await page.locator("#grid").boundingBox();
  await page.mouse.move(from.x + 10, from.y + from.height / 2);
  await page.mouse.down();
  for (let i = 1; i <= 12; i += 1) {
    await page.mouse.move(from.x + 10 + ((grid.x + 20 - from.x) * i) / 12, from.y + ((grid.y + 10 - from.y) * i) / 12);
  }
  await page.mouse.up();
  await page.waitForFunction(() => document.querySelector('[data-widget="table:page"]')?.getAttribute("gs-y") === "0", null, { timeout: 5_000 });
  await saved(page);
  result.dragged = await layout(page);
  // The keyboard does the same: the visitors number one column wider.
  const narrow = Number((await page.locator('[data-widget="number:visitors"]').getAttribute("gs-w")) ?? 1);
  await page.getByRole("button", { name: "Wider: Visitors" }).click();
  await page.waitForFunction((w) => document.querySelector('[data-widget="number:visitors"]')?.getAttribute("gs-w") === String(w), narrow + 1, { timeout: 5_000 });
  await saved(page);
  // The chart goes.
  await page.getByRole("button", { name: "Remove Page views over time" }).click();
  await page.waitForFunction(() => document.querySelectorAll("#grid .grid-stack-item").length === 2, null, { timeout: 5_000 });
  await saved(page);
  result.edited = await layout(page);
  await page.screenshot({ path: join(artifacts, "dashboard-admin.png"), fullPage: true });
  await audit(page, "dashboard (admin)");

  await page.reload({ waitUntil: "load" });
  await page.locator("#grid .grid-stack-item").first().waitFor({ timeout: 5_000 });
  await page.waitForFunction((n) => document.querySelectorAll("#grid .grid-stack-item").length === n, result.edited.length, { timeout: 5_000 });
  result.reloaded = await layout(page);
  result.url = new URL(page.url()).pathname;

  // The viewer: the same grid, fixed, with nothing to change it with.
  const viewer = await logIn(viewerEmail, viewerPassword, result.url);
  await viewer.locator("#grid .grid-stack-item").first().waitFor({ timeout: 10_000 });
  await viewer.waitForFunction((n) => document.querySelectorAll("#grid .grid-stack-item").length === n, result.edited.length, { timeout: 5_000 });
  result.viewerLayout = await layout(viewer);
  result.viewerControls = await viewer.locator("#grid button, #add-widget, #create-dashboard, #delete-dashboard, #widget-choice").count();
  result.viewerStatic = await viewer.locator("#grid").getAttribute("gs-static");
  result.viewerResizeHandles = await viewer.locator("#grid .ui-resizable-handle:visible").count();
  await viewer.screenshot({ path: join(artifacts, "dashboard-viewer.png"), fullPage: true });
  await audit(viewer, "dashboard (viewer)");

  // Stored XSS: markup in every field an event carries, shown as text.
  const markup = '<img src=x onerror="window.__xss=1">';
  await ingest([
    { type: "pageview", url: `https://shop.example/${encodeURIComponent(markup)}`, referrer: `https://${"evil.example"}/?q=${encodeURIComponent(markup)}`, anonymous_id: "xss" },
    { type: "event", name: `<script>window.__xss=1</script>`, props: { plan: markup }, url: "https://shop.example/", anonymous_id: "xss" },
    { type: "error", url: "https://shop.example/", anonymous_id: "xss", error_type: "Error", message: markup, stack: `Error: ${markup}\n    at ${markup} (https://shop.example/a.js:1:1)` },
  ]);
  await page.waitForTimeout(500);
  const texts = {};
  for (const [name, path, ready] of [
    ["overview", "/", "#table-page tbody tr"],
    ["events", "/events", "#events-total"],
    ["dashboard", result.url, '[data-widget="table:page"] tbody tr'],
    ["performance", "/performance", "#vital-LCP"],
    ["settings", "/settings", "#allowed-origins"],
    ["errors", "/errors", "#error-groups tbody tr"],
  ]) {
    await page.goto(`${base}${path}`, { waitUntil: "load" });
    await page.locator(ready).first().waitFor({ timeout: 5_000 });
    await page.waitForTimeout(300);
    texts[name] = await page.locator("main").innerText();
    await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
    await audit(page, name);
  }
  await page.locator("#error-groups button", { hasText: "onerror" }).first().click();
  await page.locator("#stack li").first().waitFor({ timeout: 5_000 });
  texts.group = await page.locator("main").innerText();
  await page.screenshot({ path: join(artifacts, "error-group.png"), fullPage: true });
  await audit(page, "error group");
  // The dark theme passes the same checks.
  await page.selectOption("#theme", "dark");
  await audit(page, "error group (dark)");
  await page.goto(`${base}/`, { waitUntil: "load" });
  await page.locator("#table-page tbody tr").first().waitFor({ timeout: 5_000 });
  await page.screenshot({ path: join(artifacts, "overview-dark.png"), fullPage: true });
  await audit(page, "overview (dark)");
  result.xssRan = await page.evaluate(() => window.__xss !== undefined);
  result.injectedImages = await page.locator("main img").count();
  result.markupShownOn = Object.entries(texts)
    .filter(([, text]) => text.includes("onerror") || text.includes("<script>"))
    .map(([name]) => name);
  result.problems = problems;
  result.accessibility = accessibility;
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
