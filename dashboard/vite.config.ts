import { defineConfig } from "vite";

// JSX through Preact's automatic runtime; the API is on the same origin
// (the binary serves both), so `npm run dev` proxies it.
export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", assetsInlineLimit: 0, sourcemap: false },
  server: { proxy: { "/api": "http://127.0.0.1:7700" } },
});
