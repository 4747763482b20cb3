// What the SDKs send: the ingest API's events as the server's OpenAPI
// document describes them. `openapi.ts` is generated from `sdk/openapi.json`
// (`npm run generate`), which `sightline openapi` writes; tests on both
// sides fail when either is stale.

import type { components } from "./openapi";

type Schemas = components["schemas"];

/** A custom event property's value. */
export type PropValue = Schemas["EventPropValue"];

/** An event as the SDKs send it: the common fields, which they always set,
 * and those of its `type`. */
export type WireEvent = Schemas["EventCommon"] & {
  ts: number;
  anonymous_id: string;
  session_id: string;
  url: string;
} & Schemas["IngestEventKind"];
