// What the SDKs send: the ingest contract's events.

export type PropValue = string | number | boolean;

interface Common {
  ts: number;
  anonymous_id: string;
  session_id: string;
  url: string;
  release?: string;
}

export type WireEvent = Common &
  (
    | { type: "pageview"; referrer?: string; title?: string }
    | { type: "event"; name: string; props?: Record<string, PropValue> }
    | { type: "error"; error_type?: string; message?: string; stack?: string; fingerprint?: string[] }
    | { type: "vital"; name: "LCP" | "INP" | "CLS" | "FCP" | "TTFB" | "FID"; value: number }
  );
