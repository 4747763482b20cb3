// Pages rendered into happy-dom against a fake of the query API's answers:
// what a viewer and an admin get to do, and event data shown as text.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { SegmentBar } from "../src/controls";
import { Dashboards } from "../src/dashboards";
import { WidgetBody, type Widget } from "../src/widgets";

const MARKUP = '<img src=x onerror="window.__xss=1">';
const widgets: Widget[] = [
  { id: "w1", x: 0, y: 0, w: 3, h: 2, view: { kind: "number", metric: "visitors" } },
  { id: "w2", x: 3, y: 0, w: 6, h: 5, view: { kind: "table", table: "page" } },
];
const board = { id: "dsh_1", name: "Launch", widgets, created_by: "u", created_at: 1, updated_by: "u", updated_at: 1 };

/** The answers of the routes the widgets read; every request is noted. */
function fakeApi() {
  const requests: { method: string; path: string; body?: unknown }[] = [];
  const answer = (path: string) => {
    if (path.endsWith("/dashboards")) return { dashboards: [board] };
    if (path.includes("/pageviews")) return { total: { visitors: 7, pageviews: 9 }, series: [] };
    if (path.includes("/breakdown")) return { dimension: "page", rows: [{ value: `/${MARKUP}`, visitors: 3 }] };
    if (path.includes("/dashboards/")) return board;
    throw new Error(`unexpected ${path}`);
  };
  vi.stubGlobal("fetch", async (path: string, init: RequestInit = {}) => {
    const method = init.method ?? "GET";
    requests.push({ method, path, body: init.body ? JSON.parse(String(init.body)) : undefined });
    return new Response(JSON.stringify(answer(path)), { status: 200, headers: { "Content-Type": "application/json" } });
  });
  return requests;
}

class FakeEventSource {
  addEventListener() {}
  close() {}
}

const settle = () => act(() => new Promise((resolve) => setTimeout(resolve, 20)));

let root: HTMLElement;
beforeEach(() => {
  vi.stubGlobal("EventSource", FakeEventSource);
  root = document.createElement("div");
  document.body.append(root);
});
afterEach(() => {
  render(null, root);
  root.remove();
  vi.unstubAllGlobals();
});

describe("a dashboard", () => {
  it("is only shown to a viewer: no control, and a fixed grid", async () => {
    fakeApi();
    await act(() => render(<Dashboards projectId="prj_1" admin={false} dashboardId={undefined} open={() => {}} />, root));
    await settle();
    expect(root.querySelectorAll("#grid .grid-stack-item")).toHaveLength(2);
    expect(root.querySelectorAll("button, #widget-choice, #dashboard-name")).toHaveLength(0);
    expect(root.querySelector("#grid")?.getAttribute("gs-static")).toBe("true");
    await vi.waitFor(() => expect(root.querySelector('[data-widget="number:visitors"] .widget-number')?.textContent).toBe("7"));
  });

  it("lets an admin resize a widget from the keyboard, and saves the new places", async () => {
    const requests = fakeApi();
    await act(() => render(<Dashboards projectId="prj_1" admin={true} dashboardId="dsh_1" open={() => {}} />, root));
    await settle();
    const wider = root.querySelector<HTMLButtonElement>('button[aria-label="Wider: Visitors"]')!;
    await act(() => wider.click());
    await settle();
    const put = requests.find((r) => r.method === "PUT");
    expect(put?.path).toBe("/api/v1/projects/prj_1/dashboards/dsh_1");
    const saved = (put?.body as { widgets: Widget[] }).widgets;
    expect(saved.find((w) => w.id === "w1")?.w).toBe(4);
    await vi.waitFor(() => expect(root.querySelector("#dashboard-status")?.textContent).toBe("Saved."));
  });
});

describe("a table widget", () => {
  it("shows event data as text, never as markup", async () => {
    fakeApi();
    const range = { from: 0, to: 1, interval: "hour" as const };
    await act(() => render(<WidgetBody base="/api/v1/projects/prj_1" view={{ kind: "table", table: "page" }} range={range} tick={0} />, root));
    await settle();
    await vi.waitFor(() => expect(root.querySelector("td")?.textContent).toBe(`/${MARKUP}`));
    expect(root.querySelector("img")).toBeNull();
  });
});

describe("the segment picker", () => {
  it("applies the filters the page understands and names the others", async () => {
    const segment = { id: "seg_1", name: "Mobile pros", filters: { device: "mobile", "prop.plan": "pro", referrer: "x.example" }, created_by: "u", created_at: 1 };
    vi.stubGlobal("fetch", async () => new Response(JSON.stringify({ segments: [segment] }), { status: 200 }));
    const applied: Record<string, string>[] = [];
    const page = (name: string) => name === "device" || name.startsWith("prop.");
    await act(() => render(<SegmentBar projectId="prj_1" admin={false} filters={{}} applies={page} onApply={(f) => applied.push(f)} />, root));
    await vi.waitFor(() => expect(root.querySelectorAll("#segment option")).toHaveLength(2));
    const select = root.querySelector<HTMLSelectElement>("#segment")!;
    select.value = "seg_1";
    await act(() => void select.dispatchEvent(new Event("change")));
    expect(applied).toEqual([{ device: "mobile", "prop.plan": "pro" }]);
    expect(root.querySelector("#segment-ignored")?.textContent).toBe("Not applicable on this page: referrer");
    expect(root.querySelector("#save-segment")).toBeNull();
  });
});
