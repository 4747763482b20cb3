import http from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";

type Sent = { type: string; name?: string; props?: Record<string, unknown>; error_type?: string; url: string };

const realFetch = globalThis.fetch;

/** Requests to Sightline are recorded in `sent`; others really go out. */
function stubFetch(sent: Sent[]) {
  vi.stubGlobal("fetch", (url: string, init: RequestInit) => {
    if (!url.startsWith("http://sightline.invalid")) return realFetch(url, init);
    sent.push(...JSON.parse(String(init.body)).events);
    return Promise.resolve(new Response(null, { status: 202 }));
  });
}

async function sdk(sent: Sent[]) {
  vi.resetModules();
  stubFetch(sent);
  const s = await import("../src/index");
  s.init({ key: "pk_1", endpoint: "http://sightline.invalid", captureUncaught: false, flushDelayMs: 0 });
  return s;
}

async function request(server: http.Server, path: string): Promise<number> {
  const { port } = server.address() as { port: number };
  const response = await realFetch(`http://127.0.0.1:${port}${path}`);
  await response.arrayBuffer();
  return response.status;
}

describe("@sightline/node", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("records each request's method, route (ids folded), status and duration, and captures what a handler throws", async () => {
    const sent: Sent[] = [];
    const s = await sdk(sent);
    const server = http.createServer(
      s.withSightline(async (req, res) => {
        if (req.url === "/boom") throw new RangeError("no");
        res.end("ok");
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    expect(await request(server, "/orders/123?x=1")).toBe(200);
    expect(await request(server, "/boom")).toBe(500);
    server.close();
    await s.flush();
    const requests = sent.filter((e) => e.name === s.REQUEST_EVENT);
    expect(requests.map((e) => [e.props?.method, e.props?.route, e.props?.status])).toEqual([
      ["GET", "/orders/:id", 200],
      ["GET", "/boom", 500],
    ]);
    expect(requests.every((e) => typeof e.props?.duration_ms === "number")).toBe(true);
    expect(sent.filter((e) => e.type === "error").map((e) => e.error_type)).toEqual(["RangeError"]);
  });

  it("records an Express app's requests by route pattern and captures what its routes throw", async () => {
    const sent: Sent[] = [];
    const s = await sdk(sent);
    const { default: express } = await import("express");
    const app = express();
    app.use(s.sightlineMiddleware());
    const api = express.Router();
    api.get("/orders/:orderId", (_req, res) => void res.send("an order"));
    api.get("/checkout", () => {
      throw new Error("the order store is down");
    });
    app.use("/api", api);
    app.use(s.sightlineErrorHandler());
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    expect(await request(server, "/api/orders/42")).toBe(200);
    expect(await request(server, "/api/checkout")).toBe(500);
    expect(await request(server, "/nowhere")).toBe(404);
    server.close();
    await s.flush();
    const requests = sent.filter((e) => e.name === s.REQUEST_EVENT).map((e) => [e.props?.route, e.props?.status]);
    expect(requests).toEqual([
      ["/api/orders/:orderId", 200],
      ["/api/checkout", 500],
      ["/nowhere", 404],
    ]);
    const errors = sent.filter((e) => e.type === "error");
    expect(errors.map((e) => [e.error_type, e.url])).toEqual([["Error", expect.stringMatching(/\/api\/checkout$/)]]);
  });

  it("reports Express's route pattern when the router matched one", async () => {
    const sent: Sent[] = [];
    const s = await sdk(sent);
    const record = s.sightlineMiddleware();
    const res = new http.ServerResponse(new http.IncomingMessage(null as never));
    const req = Object.assign(new http.IncomingMessage(null as never), {
      method: "POST",
      url: "/v1/orders/42",
      originalUrl: "/api/v1/orders/42",
      baseUrl: "/api",
      headers: { host: "shop.example" },
    });
    let nextCalled = false;
    record(req, res, () => (nextCalled = true));
    Object.assign(req, { route: { path: "/v1/orders/:orderId" } });
    res.statusCode = 201;
    res.emit("finish");
    await s.flush();
    expect(nextCalled).toBe(true);
    expect(sent[0].props).toMatchObject({ method: "POST", route: "/api/v1/orders/:orderId", status: 201 });
    expect(sent[0].url).toBe("http://shop.example/api/v1/orders/42");
  });

  it("lets beforeSend drop events and never throws from a broken hook", async () => {
    const sent: Sent[] = [];
    vi.resetModules();
    stubFetch(sent);
    const s = await import("../src/index");
    s.init({
      key: "k",
      endpoint: "http://sightline.invalid",
      captureUncaught: false,
      flushDelayMs: 0,
      beforeSend: (e) => {
        if (e.type === "event" && e.name === "boom") throw new Error("hook");
        return e.type === "event" && e.name === "secret" ? null : e;
      },
    });
    s.track("secret");
    expect(() => s.track("boom")).not.toThrow();
    s.track("kept");
    await s.flush();
    expect(sent.map((e) => e.name)).toEqual(["kept"]);
  });
});
