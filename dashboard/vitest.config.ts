import { defineConfig, mergeConfig } from "vitest/config";

import vite from "./vite.config.ts";

// Component tests render into happy-dom with the app's own JSX settings.
export default mergeConfig(vite, defineConfig({ test: { environment: "happy-dom", include: ["unit/**/*.test.{ts,tsx}"] } }));
