// The public API in a minimal stand-in for a page: what reaches the queue
// under sampling, beforeSend, opt-out and Do-Not-Track, page views on
// single-page-app navigation, and that nothing throws into the page.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

type Listener = (event: unknown) => void;

let listeners: Map<string, Listener[]>;
let sent: { type: string; name?: string; url: string; error_type?: string }[];

function page(url: string, navigatorExtra: Record<string, unknown> = {}) {
  listeners = new Map();
  sent = [];
  const store = new Map<string, string>();
  const location = { href: url };
  const history = {
    pushState: (_s: unknown, _t: string, next: string) => (location.href = new URL(next, location.href).href),
    replaceState: (_s: unknown, _t: string, next: string) => (location.href = new URL(next, location.href).href),
  };
  vi.stubGlobal("window", globalThis);
  vi.stubGlobal("location", location);
  vi.stubGlobal("history", history);
  vi.stubGlobal("document", { title: "Shop", referrer: "https://search.example/", visibilityState: "visible" });
  vi.stubGlobal("navigator", { sendBeacon: () => true, ...navigatorExtra });
  vi.stubGlobal("localStorage", {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => void store.set(k, v),
    removeItem: (k: string) => void store.delete(k),
  });
  vi.stubGlobal("addEventListener", (type: string, fn: Listener) => listeners.set(type, [...(listeners.get(type) ?? []), fn]));
  vi.stubGlobal(
    "fetch",
    vi.fn((_url: string, init: { body: string }) => {
      sent.push(...JSON.parse(init.body).events);
      return Promise.resolve(new Response(null, { status: 202 }));
    }),
  );
}

const dispatch = (type: string, event: unknown) => listeners.get(type)?.forEach((fn) => fn(event));

async function sdk() {
  vi.resetModules();
  return import("../src/index");
}

const options = { key: "pk_1", endpoint: "https://s.example", vitals: false, flushDelayMs: 0 };

describe("the browser client", () => {
  beforeEach(() => page("https://shop.example/"));
  afterEach(() => vi.unstubAllGlobals());

  it("sends page views on load and on each SPA navigation to a new URL", async () => {
    const s = await sdk();
    s.init(options);
    history.pushState({}, "", "/cart");
    history.replaceState({}, "", "/cart"); // the same URL: not another view
    location.href = "https://shop.example/cart#reviews";
    dispatch("hashchange", {});
    await new Promise((r) => setTimeout(r, 10));
    await s.flush();
    expect(sent.filter((e) => e.type === "pageview").map((e) => e.url)).toEqual([
      "https://shop.example/",
      "https://shop.example/cart",
      "https://shop.example/cart#reviews",
    ]);
  });

  it("captures uncaught errors and rejections", async () => {
    const s = await sdk();
    s.init(options);
    dispatch("error", { error: new TypeError("boom"), message: "boom" });
    dispatch("unhandledrejection", { reason: "plain" });
    await s.flush();
    expect(sent.filter((e) => e.type === "error").map((e) => e.error_type)).toEqual(["TypeError", "UnhandledRejection"]);
  });

  it("lets beforeSend change or drop events", async () => {
    const s = await sdk();
    s.init({ ...options, autoPageviews: false, beforeSend: (e) => (e.type === "event" && e.name === "secret" ? null : e) });
    s.track("secret");
    s.track("signup");
    await s.flush();
    expect(sent.map((e) => e.name)).toEqual(["signup"]);
  });

  it("sends nothing for an unsampled session", async () => {
    const s = await sdk();
    s.init({ ...options, sampleRate: 0 });
    s.track("signup");
    await s.flush();
    expect(sent).toEqual([]);
  });

  it("stops on opt-out, stays off on the next page, and starts again after opt-in", async () => {
    let s = await sdk();
    s.init({ ...options, autoPageviews: false });
    s.optOut();
    s.track("after opt-out");
    s = await sdk(); // the next page load
    s.init({ ...options, autoPageviews: false });
    s.track("next page");
    s.optIn();
    s.init({ ...options, autoPageviews: false });
    s.track("opted in");
    await s.flush();
    expect(sent.map((e) => e.name)).toEqual(["opted in"]);
  });

  it("honours Do-Not-Track and Global Privacy Control unless told otherwise", async () => {
    page("https://shop.example/", { doNotTrack: "1" });
    let s = await sdk();
    s.init(options);
    s.track("x");
    await s.flush();
    expect(sent).toEqual([]);
    page("https://shop.example/", { globalPrivacyControl: true });
    s = await sdk();
    s.init({ ...options, respectDoNotTrack: false, autoPageviews: false });
    s.track("y");
    await s.flush();
    expect(sent.map((e) => e.name)).toEqual(["y"]);
  });

  it("never throws into the page, whatever it is given", async () => {
    const s = await sdk();
    vi.stubGlobal("fetch", () => {
      throw new Error("fetch is broken");
    });
    expect(() => s.init(undefined as never)).not.toThrow();
    s.init({ ...options, beforeSend: () => { throw new Error("a broken hook"); } });
    expect(() => s.track("x", { a: 1 })).not.toThrow();
    expect(() => s.captureException(undefined)).not.toThrow();
    expect(() => dispatch("error", null)).not.toThrow();
    await expect(s.flush() ?? Promise.resolve()).resolves.toBeUndefined();
  });
});
