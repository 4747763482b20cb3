// A node:http service using @sightline/node: requests recorded through
// withSightline (one of them throws), a custom event, then an uncaught
// exception that ends the process once the queue is sent.
// Usage: node service.mjs <sightline URL> <ingest key>.
import http from "node:http";

import { init, track, withSightline } from "@sightline/node";

const [endpoint, key] = process.argv.slice(2);
init({ key, endpoint, release: "api-1", flushDelayMs: 50 });

const server = http.createServer(
  withSightline(async (req, res) => {
    if (req.url.startsWith("/orders/")) return void res.end("an order");
    if (req.url === "/checkout") throw new Error("the order store is down");
    res.statusCode = 404;
    res.end();
  }),
);
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}`;
for (const path of ["/orders/1", "/orders/2", "/missing", "/checkout"]) {
  const response = await fetch(base + path);
  await response.arrayBuffer();
}
server.close();
track("deploy", { version: "api-1" });
setTimeout(() => {
  throw new TypeError("the worker crashed");
}, 10);
