import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { MAX_QUEUE, Transport } from "../src/transport";
import type { WireEvent } from "../src/wire";

const event = (i: number): WireEvent => ({
  type: "event",
  name: `e${i}`,
  ts: i,
  anonymous_id: "v",
  session_id: "s",
  url: "https://shop.example/",
});

/** The events of each request fetch was asked to send. */
function sentBatches(fetch: ReturnType<typeof vi.fn>): string[][] {
  return fetch.mock.calls.map(([, init]) => JSON.parse(init.body).events.map((e: { name: string }) => e.name));
}

const answer = (status: number, headers: Record<string, string> = {}) =>
  Promise.resolve(new Response(null, { status, headers }));

describe("Transport", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it("batches what arrives within the delay into one request, key in the URL", async () => {
    const fetch = vi.fn(() => answer(202));
    vi.stubGlobal("fetch", fetch);
    const t = new Transport({ endpoint: "https://s.example/", key: "pk_1", flushDelayMs: 100 });
    [0, 1, 2].forEach((i) => t.enqueue(event(i)));
    expect(fetch).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(100);
    expect(sentBatches(fetch)).toEqual([["e0", "e1", "e2"]]);
    expect(fetch.mock.calls[0][0]).toBe("https://s.example/api/v1/ingest?key=pk_1");
  });

  it("retries a failed batch with growing backoff until it goes through, in order", async () => {
    const fetch = vi
      .fn()
      .mockImplementationOnce(() => Promise.reject(new TypeError("offline")))
      .mockImplementationOnce(() => answer(503))
      .mockImplementation(() => answer(202));
    vi.stubGlobal("fetch", fetch);
    // The jitter at its least: backoffs of exactly 0.5 s, then 1 s.
    vi.spyOn(Math, "random").mockReturnValue(0);
    const t = new Transport({ endpoint: "https://s.example", key: "k", flushDelayMs: 0 });
    t.enqueue(event(0));
    await vi.advanceTimersByTimeAsync(0);
    expect(fetch).toHaveBeenCalledTimes(1);
    t.enqueue(event(1));
    await vi.advanceTimersByTimeAsync(499);
    expect(fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fetch).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(fetch).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(sentBatches(fetch)).toEqual([["e0"], ["e0", "e1"], ["e0", "e1"]]);
  });

  it("waits as long as Retry-After says on 429", async () => {
    const fetch = vi.fn().mockImplementationOnce(() => answer(429, { "Retry-After": "30" })).mockImplementation(() => answer(202));
    vi.stubGlobal("fetch", fetch);
    const t = new Transport({ endpoint: "https://s.example", key: "k", flushDelayMs: 0 });
    t.enqueue(event(0));
    await vi.advanceTimersByTimeAsync(29_000);
    expect(fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it("drops a batch the server refuses for good (4xx other than 429)", async () => {
    const fetch = vi.fn().mockImplementationOnce(() => answer(401)).mockImplementation(() => answer(202));
    vi.stubGlobal("fetch", fetch);
    const t = new Transport({ endpoint: "https://s.example", key: "k", flushDelayMs: 0 });
    t.enqueue(event(0));
    await vi.advanceTimersByTimeAsync(0);
    t.enqueue(event(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(sentBatches(fetch)).toEqual([["e0"], ["e1"]]);
  });

  it("keeps at most MAX_QUEUE events while offline, dropping the oldest", async () => {
    vi.stubGlobal("fetch", vi.fn(() => Promise.reject(new TypeError("offline"))));
    const t = new Transport({ endpoint: "https://s.example", key: "k", flushDelayMs: 10_000 });
    for (let i = 0; i < MAX_QUEUE + 150; i++) t.enqueue(event(i));
    expect(t.dropped).toBe(150);
    const beacons: string[][] = [];
    vi.stubGlobal("navigator", {
      sendBeacon: (_url: string, body: Blob) => {
        void body.text().then((text) => beacons.push(JSON.parse(text).events.map((e: { name: string }) => e.name)));
        return true;
      },
    });
    t.beaconAll();
    await vi.waitFor(() => expect(beacons.length).toBe(10));
    const names = beacons.flat();
    expect(names.length).toBe(MAX_QUEUE);
    expect(names[0]).toBe("e150");
    expect(beacons.every((b) => b.length <= 100)).toBe(true);
  });

  it("hands the queue to sendBeacon when the page goes, in beacons under 64 KiB", async () => {
    vi.stubGlobal("fetch", vi.fn(() => answer(202)));
    const sizes: number[] = [];
    vi.stubGlobal("navigator", { sendBeacon: (_url: string, body: Blob) => (sizes.push(body.size), true) });
    const t = new Transport({ endpoint: "https://s.example", key: "k", flushDelayMs: 10_000 });
    const big = "x".repeat(2_000);
    for (let i = 0; i < 90; i++) t.enqueue({ ...event(i), props: { big } } as WireEvent);
    t.beaconAll();
    expect(sizes.length).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024);
  });
});
