// How the browser SDK is set up.

import type { WireEvent } from "@sightline/core";

export interface SightlineOptions {
  /** The project's public ingest key (`pk_…`). */
  key: string;
  /** Where Sightline runs, e.g. `https://sightline.example.com`. */
  endpoint: string;
  /** Your app's version; errors are source-mapped with its maps. */
  release?: string;
  /** Send page views automatically, single-page-app navigation included (default true). */
  autoPageviews?: boolean;
  /** Capture uncaught errors and unhandled rejections (default true). */
  autoErrors?: boolean;
  /** Measure Core Web Vitals (default true). */
  vitals?: boolean;
  /** `"local"` (default) keeps the visitor id in localStorage; `"memory"`
   * keeps nothing on the device (a new visitor per page load, no cookie,
   * no storage). */
  persistence?: "local" | "memory";
  /** Share of sessions sent, 0 to 1 (default 1). */
  sampleRate?: number;
  /** Sees every event before it is queued; return null to drop it. */
  beforeSend?: (event: WireEvent) => WireEvent | null;
  /** Honour Do-Not-Track and Global Privacy Control (default true). */
  respectDoNotTrack?: boolean;
  /** How long events wait to be batched, in ms (default 1000). */
  flushDelayMs?: number;
}
