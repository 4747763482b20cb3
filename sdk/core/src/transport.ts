// Batching and delivery: events wait in a bounded queue and go out in
// batches; a failed batch is retried with exponential backoff (honouring
// Retry-After). In a browser, when the page is hidden or left, what is
// queued goes with `navigator.sendBeacon`, which the browser delivers after
// the page is gone.

import type { WireEvent } from "./wire";

/** Most events kept while the server cannot be reached; the oldest go first. */
export const MAX_QUEUE = 1000;
/** Events per request (the server takes at most 1000). */
const MAX_BATCH = 100;
/** How long events wait for more to join them. */
const FLUSH_DELAY_MS = 1000;
const MAX_BACKOFF_MS = 60_000;
/** A beacon's body must stay under the browsers' 64 KiB limit. */
const MAX_BEACON_BYTES = 60_000;

export interface TransportOptions {
  endpoint: string;
  key: string;
  /** Tests and quiet pages may shorten the wait. */
  flushDelayMs?: number;
}

export class Transport {
  private queue: WireEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sending = false;
  private failures = 0;
  /** The key rides in the query, so a CORS preflight can be checked
   * against the project's allowed origins. */
  private readonly url: string;
  /** Events dropped because the queue was full. */
  dropped = 0;

  constructor(private readonly options: TransportOptions) {
    const base = options.endpoint.replace(/\/+$/, "");
    this.url = `${base}/api/v1/ingest?key=${encodeURIComponent(options.key)}`;
  }

  enqueue(event: WireEvent): void {
    this.queue.push(event);
    if (this.queue.length > MAX_QUEUE) {
      this.dropped += this.queue.length - MAX_QUEUE;
      this.queue.splice(0, this.queue.length - MAX_QUEUE);
    }
    this.schedule(this.options.flushDelayMs ?? FLUSH_DELAY_MS);
  }

  /** Events queued or in flight. */
  pending(): number {
    return this.queue.length + (this.sending ? 1 : 0);
  }

  /** Sends what is queued now (resolves once the request is answered). */
  async flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.sending || this.queue.length === 0) return;
    this.sending = true;
    const batch = this.queue.splice(0, MAX_BATCH);
    let retryAfterMs: number | undefined;
    try {
      const response = await fetch(this.url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ events: batch }),
        keepalive: true,
        credentials: "omit",
      });
      if (response.status === 429 || response.status >= 500) {
        retryAfterMs = Number(response.headers.get("Retry-After")) * 1000 || undefined;
        throw new Error(`status ${response.status}`);
      }
      // Other answers are final: 202 (kept), 4xx (never better on retry).
      this.failures = 0;
    } catch {
      // Offline, or the server asked to wait: back in front of the queue.
      this.queue.unshift(...batch);
      this.queue.splice(MAX_QUEUE);
      this.failures++;
      const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1)) * (0.5 + Math.random() / 2);
      this.sending = false;
      this.schedule(Math.max(backoff, retryAfterMs ?? 0));
      return;
    }
    this.sending = false;
    if (this.queue.length > 0) this.schedule(0);
  }

  /** The page is going away: hand everything queued to the browser. */
  beaconAll(): void {
    if (typeof navigator === "undefined" || typeof navigator.sendBeacon !== "function") {
      void this.flush();
      return;
    }
    while (this.queue.length > 0) {
      let count = Math.min(this.queue.length, MAX_BATCH);
      let body = JSON.stringify({ events: this.queue.slice(0, count) });
      while (body.length > MAX_BEACON_BYTES && count > 1) {
        count = Math.ceil(count / 2);
        body = JSON.stringify({ events: this.queue.slice(0, count) });
      }
      // A text/plain body needs no CORS preflight, which a beacon cannot make.
      if (!navigator.sendBeacon(this.url, new Blob([body], { type: "text/plain" }))) return;
      this.queue.splice(0, count);
    }
  }

  private schedule(delayMs: number): void {
    if (this.timer !== undefined || this.sending) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
    // In Node a pending batch must not keep the process alive (the SDK
    // flushes on exit instead); browsers have no unref.
    (this.timer as { unref?: () => void }).unref?.();
  }
}
