// @sightline/node: errors (uncaught ones too), custom events, and each HTTP
// request's route, status and duration, from node:http or Express. Events
// are batched; what is queued is sent before the process exits.

import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

import { Transport, type PropValue, type WireEvent } from "@sightline/core";

export type { PropValue, WireEvent } from "@sightline/core";

export interface NodeOptions {
  /** The project's ingest key (`pk_…`). */
  key: string;
  /** Where Sightline runs, e.g. `https://sightline.example.com`. */
  endpoint: string;
  /** Your service's version; errors are grouped per release. */
  release?: string;
  /** Capture `uncaughtException` and `unhandledRejection` (default true).
   * The process still ends as Node would end it, after the queue is sent. */
  captureUncaught?: boolean;
  /** Sees every event before it is queued; return null to drop it. */
  beforeSend?: (event: WireEvent) => WireEvent | null;
  /** How long events wait to be batched, in ms (default 1000). */
  flushDelayMs?: number;
}

/** Where an event happened, when it is about a request. */
export interface EventContext {
  /** The request's URL (default: `node://<hostname>`). */
  url?: string;
}

/** The event each request becomes. */
export const REQUEST_EVENT = "http_request";
/** How long exiting waits for the queue to be sent. */
const EXIT_FLUSH_MS = 2000;

interface Client {
  options: NodeOptions;
  transport: Transport;
  /** This process, as a visitor and a session. */
  processId: string;
}

let client: Client | undefined;

function send(payload: Record<string, unknown>, context?: EventContext): void {
  if (!client) return;
  let event: WireEvent | null = {
    ...payload,
    ts: Date.now(),
    anonymous_id: client.processId,
    session_id: client.processId,
    url: context?.url ?? `node://${process.env.HOSTNAME ?? "localhost"}/`,
    ...(client.options.release ? { release: client.options.release } : {}),
  } as WireEvent;
  try {
    if (client.options.beforeSend) event = client.options.beforeSend(event);
  } catch {
    return;
  }
  if (event) client.transport.enqueue(event);
}

/** Starts Sightline in this process (a second call does nothing). */
export function init(options: NodeOptions): void {
  if (client || !options?.key || !options?.endpoint) return;
  const transport = new Transport({ endpoint: options.endpoint, key: options.key, flushDelayMs: options.flushDelayMs });
  client = { options, transport, processId: randomUUID() };
  // The loop is about to empty: send what is queued first.
  process.on("beforeExit", () => void flush());
  if (options.captureUncaught !== false) {
    process.on("uncaughtException", (error) => exitAfter(error, "uncaughtException"));
    process.on("unhandledRejection", (reason) => exitAfter(reason, "unhandledRejection"));
  }
}

/** Captures what would have ended the process, sends the queue, then ends
 * it as Node would have (unless the app listens for it too). */
function exitAfter(error: unknown, event: "uncaughtException" | "unhandledRejection"): void {
  captureException(error);
  if (process.listenerCount(event) > 1) return;
  const shown = error instanceof Error ? (error.stack ?? String(error)) : `Unhandled rejection: ${String(error)}`;
  process.stderr.write(`${shown}\n`);
  void flush(EXIT_FLUSH_MS).finally(() => process.exit(1));
}

/** Records a custom event with optional properties. */
export function track(name: string, props?: Record<string, PropValue>, context?: EventContext): void {
  if (typeof name !== "string" || name === "") return;
  send({ type: "event", name, ...(props ? { props } : {}) }, context);
}

/** Records an error with its stack; `fingerprint` overrides grouping. */
export function captureException(error: unknown, context?: EventContext & { fingerprint?: string[] }): void {
  const e = error instanceof Error ? error : new Error(String(error));
  send(
    {
      type: "error",
      error_type: e.name,
      message: e.message,
      ...(e.stack ? { stack: e.stack } : {}),
      ...(context?.fingerprint ? { fingerprint: context.fingerprint } : {}),
    },
    context,
  );
}

/** Sends what is queued, waiting at most `timeoutMs`. */
export async function flush(timeoutMs = EXIT_FLUSH_MS): Promise<void> {
  if (!client) return;
  const transport = client.transport;
  const deadline = Date.now() + timeoutMs;
  while (transport.pending() > 0 && Date.now() < deadline) {
    await Promise.race([transport.flush(), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())))]);
    if (transport.pending() > 0) await new Promise((r) => setTimeout(r, 50));
  }
}

type Request = IncomingMessage & { originalUrl?: string; baseUrl?: string; route?: { path?: string } };
type Next = (error?: unknown) => void;

function requestUrl(req: Request): string {
  const host = req.headers.host ?? "localhost";
  const scheme = (req.socket as { encrypted?: boolean } | null)?.encrypted ? "https" : "http";
  return `${scheme}://${host}${req.originalUrl ?? req.url ?? "/"}`;
}

/** Express's route pattern, with the path its router is mounted at, read
 * when the router matches it: once a sub-router is left (an error handler
 * runs after it), `req.baseUrl` no longer says where it was mounted. */
function watchRoute(req: Request): () => string | undefined {
  let route = req.route;
  let matched: string | undefined;
  try {
    Object.defineProperty(req, "route", {
      configurable: true,
      enumerable: true,
      get: () => route,
      set(value: { path?: unknown } | undefined) {
        route = value as Request["route"];
        if (typeof value?.path === "string") matched = `${req.baseUrl ?? ""}${value.path}`;
      },
    });
  } catch {
    // A frozen request: the route is read at the end instead.
  }
  return () => matched;
}

/** The route a request matched: Express's route pattern when there is one,
 * else the path with numeric and id-like segments replaced by `:id`, so
 * routes do not explode into one per id. */
function routeOf(req: Request): string {
  if (req.route?.path) return `${req.baseUrl ?? ""}${req.route.path}`;
  const path = (req.originalUrl ?? req.url ?? "/").split("?")[0];
  return path.replace(/\/(\d+|[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{16,})(?=\/|$)/gi, "/:id");
}

/** Records each request (`http_request`: method, route, status,
 * duration_ms) when its response is finished. Express:
 * `app.use(sightlineMiddleware())`; node:http: call it first in the
 * handler, or use `withSightline`. */
export function sightlineMiddleware(): (req: IncomingMessage, res: ServerResponse, next?: Next) => void {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const matched = watchRoute(req as Request);
    res.once("finish", () => {
      const r = req as Request;
      const duration_ms = Number(process.hrtime.bigint() - started) / 1e6;
      const props = { method: r.method ?? "GET", route: matched() ?? routeOf(r), status: res.statusCode, duration_ms };
      track(REQUEST_EVENT, props, { url: requestUrl(r) });
    });
    next?.();
  };
}

/** Express error handler: `app.use(sightlineErrorHandler())` after the
 * routes captures what they throw, then passes it on. */
export function sightlineErrorHandler(): (error: unknown, req: IncomingMessage, res: ServerResponse, next: Next) => void {
  return (error, req, _res, next) => {
    captureException(error, { url: requestUrl(req as Request) });
    next(error);
  };
}

/** A node:http handler with every request recorded and what it throws
 * (or rejects with) captured and answered with 500. */
export function withSightline(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
): (req: IncomingMessage, res: ServerResponse) => void {
  const record = sightlineMiddleware();
  return (req, res) => {
    record(req, res);
    const failed = (error: unknown) => {
      captureException(error, { url: requestUrl(req as Request) });
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    };
    try {
      const result = handler(req, res);
      if (result && typeof (result as Promise<unknown>).then === "function") (result as Promise<unknown>).catch(failed);
    } catch (error) {
      failed(error);
    }
  };
}
