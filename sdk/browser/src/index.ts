// @sightline/browser: page views (single-page-app navigation included),
// custom events, uncaught errors and Core Web Vitals, sent to Sightline's
// ingest API in batches. Nothing here ever throws into the host page: every
// entry point and listener is wrapped.

import { onCLS, onFCP, onINP, onLCP, onTTFB, type Metric } from "web-vitals";

import { Ids } from "./ids";
import { inSample } from "./sampling";
import { Transport } from "@sightline/core";
import type { PropValue, WireEvent } from "@sightline/core";
import type { SightlineOptions } from "./options";

export type { PropValue, WireEvent } from "@sightline/core";
export type { SightlineOptions } from "./options";

const OPT_OUT_KEY = "sightline_opt_out";

interface Client {
  options: SightlineOptions;
  transport: Transport;
  ids: Ids;
  lastUrl: string | undefined;
}

let client: Client | undefined;

/** Runs `fn`, swallowing anything it throws: the host page comes first. */
function safe<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R | undefined {
  return (...args: A) => {
    try {
      return fn(...args);
    } catch {
      return undefined;
    }
  };
}

function doNotTrack(): boolean {
  const n = navigator as Navigator & { globalPrivacyControl?: boolean; msDoNotTrack?: string };
  const w = window as Window & { doNotTrack?: string };
  return n.globalPrivacyControl === true || [n.doNotTrack, w.doNotTrack, n.msDoNotTrack].some((v) => v === "1" || v === "yes");
}

function optedOut(): boolean {
  try {
    return localStorage.getItem(OPT_OUT_KEY) === "1";
  } catch {
    return false;
  }
}

type Payload = WireEvent extends infer E ? (E extends unknown ? Omit<E, "ts" | "anonymous_id" | "session_id" | "url"> : never) : never;

function send(payload: Payload, url: string = location.href): void {
  if (!client) return;
  const now = Date.now();
  const sessionId = client.ids.sessionId(now);
  if (!inSample(sessionId, client.options.sampleRate ?? 1)) return;
  let event: WireEvent | null = {
    ...payload,
    ts: now,
    anonymous_id: client.ids.visitorId(),
    session_id: sessionId,
    url,
    ...(client.options.release ? { release: client.options.release } : {}),
  } as WireEvent;
  if (client.options.beforeSend) event = client.options.beforeSend(event);
  if (event) client.transport.enqueue(event);
}

/** Starts Sightline. Does nothing outside a browser, when called twice,
 * when the visitor opted out, or (unless `respectDoNotTrack: false`) when
 * the browser asks not to be tracked. */
export const init = safe((options: SightlineOptions): void => {
  if (client || typeof window === "undefined" || !options?.key || !options?.endpoint) return;
  if (optedOut() || (options.respectDoNotTrack !== false && doNotTrack())) return;
  const transport = new Transport({ endpoint: options.endpoint, key: options.key, flushDelayMs: options.flushDelayMs });
  client = { options, transport, ids: new Ids(options.persistence !== "memory"), lastUrl: undefined };

  const leave = safe(() => transport.beaconAll());
  addEventListener("visibilitychange", () => document.visibilityState === "hidden" && leave());
  addEventListener("pagehide", leave);

  if (options.autoPageviews !== false) {
    pageview();
    // The URL is read at once (another navigation may follow in the same
    // task), the title once the app has had a turn to set it.
    const navigated = safe(() => {
      const url = location.href;
      setTimeout(() => viewOf(url), 0);
    });
    for (const method of ["pushState", "replaceState"] as const) {
      const original = history[method];
      history[method] = function (this: History, ...args: Parameters<History["pushState"]>) {
        const result = original.apply(this, args);
        navigated();
        return result;
      };
    }
    addEventListener("popstate", navigated);
    addEventListener("hashchange", navigated);
  }
  if (options.autoErrors !== false) {
    addEventListener(
      "error",
      safe((e: ErrorEvent) => {
        if (e.error) captureException(e.error);
        else if (e.message) send({ type: "error", error_type: "Error", message: e.message });
      }),
    );
    addEventListener(
      "unhandledrejection",
      safe((e: PromiseRejectionEvent) => {
        if (e.reason instanceof Error) captureException(e.reason);
        else send({ type: "error", error_type: "UnhandledRejection", message: String(e.reason) });
      }),
    );
  }
  if (options.vitals !== false) {
    const report = safe((metric: Metric) => send({ type: "vital", name: metric.name, value: metric.value }));
    onLCP(report);
    onINP(report);
    onCLS(report);
    onFCP(report);
    onTTFB(report);
    // web-vitals 6 has no FID: the first input's delay, from its entry.
    safe(() => {
      const observer = new PerformanceObserver(
        safe((list: PerformanceObserverEntryList) => {
          const first = list.getEntries()[0] as PerformanceEventTiming | undefined;
          if (!first) return;
          send({ type: "vital", name: "FID", value: first.processingStart - first.startTime });
          observer.disconnect();
        }),
      );
      observer.observe({ type: "first-input", buffered: true });
    })();
  }
});

/** Records a page view of the current URL (automatic unless
 * `autoPageviews: false`); a URL already recorded last is not counted again. */
export const pageview = safe((): void => viewOf(location.href));

const viewOf = safe((url: string): void => {
  if (!client || url === client.lastUrl) return;
  const first = client.lastUrl === undefined;
  client.lastUrl = url;
  const referrer = first && document.referrer ? { referrer: document.referrer } : {};
  send({ type: "pageview", title: document.title, ...referrer }, url);
});

/** Records a custom event with optional properties. */
export const track = safe((name: string, props?: Record<string, PropValue>): void => {
  if (typeof name !== "string" || name === "") return;
  send({ type: "event", name, ...(props ? { props } : {}) });
});

/** Records an error with its raw stack; `fingerprint` overrides grouping. */
export const captureException = safe((error: unknown, context?: { fingerprint?: string[] }): void => {
  const e = error instanceof Error ? error : new Error(String(error));
  send({
    type: "error",
    error_type: e.name,
    message: e.message,
    ...(e.stack ? { stack: e.stack } : {}),
    ...(context?.fingerprint ? { fingerprint: context.fingerprint } : {}),
  });
});

/** Sends what is queued now. */
export const flush = safe((): Promise<void> => client?.transport.flush() ?? Promise.resolve());

/** Stops sending and forgets the visitor, on this device, until `optIn()`. */
export const optOut = safe((): void => {
  try {
    localStorage.setItem(OPT_OUT_KEY, "1");
  } catch {
    // Without storage the opt-out lasts for this page.
  }
  client?.ids.clear();
  client = undefined;
});

/** Undoes `optOut()`; call `init` again to start. */
export const optIn = safe((): void => {
  try {
    localStorage.removeItem(OPT_OUT_KEY);
  } catch {
    // Nothing stored.
  }
});
