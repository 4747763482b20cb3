import { afterEach, describe, expect, it, vi } from "vitest";

import { Ids, SESSION_IDLE_MS } from "../src/ids";
import { inSample } from "../src/sampling";

/** A localStorage over a Map. */
function fakeStorage(): Storage & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return {
    map,
    get length() {
      return map.size;
    },
    clear: () => map.clear(),
    getItem: (k: string) => map.get(k) ?? null,
    key: (i: number) => [...map.keys()][i] ?? null,
    removeItem: (k: string) => void map.delete(k),
    setItem: (k: string, v: string) => void map.set(k, v),
  };
}

describe("Ids", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("keeps the visitor id in localStorage across page loads", () => {
    const storage = fakeStorage();
    vi.stubGlobal("localStorage", storage);
    const first = new Ids(true).visitorId();
    expect(new Ids(true).visitorId()).toBe(first);
    expect(storage.map.get("sightline_id")).toBe(first);
  });

  it("stores nothing in memory mode, and each page load is a new visitor", () => {
    const storage = fakeStorage();
    vi.stubGlobal("localStorage", storage);
    const ids = new Ids(false);
    expect(ids.visitorId()).toBe(ids.visitorId());
    expect(new Ids(false).visitorId()).not.toBe(ids.visitorId());
    ids.sessionId(0);
    expect(storage.map.size).toBe(0);
  });

  it("rolls the session over after 30 idle minutes, and only then", () => {
    vi.stubGlobal("localStorage", fakeStorage());
    const ids = new Ids(true);
    const start = 1_000_000;
    const first = ids.sessionId(start);
    expect(ids.sessionId(start + SESSION_IDLE_MS)).toBe(first);
    // Activity keeps it alive: idle is counted from the last event.
    expect(ids.sessionId(start + 2 * SESSION_IDLE_MS)).toBe(first);
    const next = ids.sessionId(start + 3 * SESSION_IDLE_MS + 1);
    expect(next).not.toBe(first);
    // Another page load of the same visitor continues the session.
    expect(new Ids(true).sessionId(start + 3 * SESSION_IDLE_MS + 2)).toBe(next);
  });

  it("works without storage at all (sandboxed frames)", () => {
    vi.stubGlobal("localStorage", undefined);
    const ids = new Ids(true);
    expect(ids.visitorId()).toBe(ids.visitorId());
    expect(ids.sessionId(0)).toBe(ids.sessionId(1));
  });
});

describe("sampling", () => {
  it("keeps a session whole and samples close to the rate", () => {
    expect(inSample("any", 1)).toBe(true);
    expect(inSample("any", 0)).toBe(false);
    const sessions = Array.from({ length: 10_000 }, (_, i) => `session-${i}`);
    const kept = sessions.filter((s) => inSample(s, 0.25));
    expect(kept.length / sessions.length).toBeGreaterThan(0.22);
    expect(kept.length / sessions.length).toBeLessThan(0.28);
    expect(kept.every((s) => inSample(s, 0.25))).toBe(true);
  });
});
