// What the overview asks: a time range (and the one before it, to compare)
// and the filters that apply to the whole page.

export type RangeName = "today" | "24h" | "7d" | "30d";

export const RANGES: [RangeName, string][] = [
  ["today", "Today"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
];

export interface Range {
  from: number;
  to: number;
  interval: "hour" | "day";
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export function rangeOf(name: RangeName, now: number): Range {
  switch (name) {
    case "today": {
      const start = new Date(now);
      start.setHours(0, 0, 0, 0);
      return { from: start.getTime(), to: now + 1, interval: "hour" };
    }
    case "24h":
      return { from: now - DAY, to: now + 1, interval: "hour" };
    case "7d":
      return { from: now - 7 * DAY, to: now + 1, interval: "day" };
    case "30d":
      return { from: now - 30 * DAY, to: now + 1, interval: "day" };
  }
}

/** The period of the same length just before. */
export function previous(range: Range): Range {
  const length = range.to - range.from;
  return { ...range, from: range.from - length, to: range.from };
}

/** The page view filters, by the query API's parameter names. */
export const FILTER_NAMES = ["path", "referrer", "device", "browser", "os", "release"] as const;
export type Filters = Partial<Record<(typeof FILTER_NAMES)[number], string>>;

/** The breakdowns shown, with the filter a click on a row sets. */
export const DIMENSIONS: { dimension: string; label: string; filter: keyof Filters }[] = [
  { dimension: "page", label: "Pages", filter: "path" },
  { dimension: "referrer", label: "Referrers", filter: "referrer" },
  { dimension: "device", label: "Devices", filter: "device" },
  { dimension: "browser", label: "Browsers", filter: "browser" },
  { dimension: "os", label: "Operating systems", filter: "os" },
];

export function params(range: Range, filters: Filters, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams({ from: String(range.from), to: String(range.to), ...extra });
  for (const [name, value] of Object.entries(filters)) if (value !== undefined) p.set(name, value);
  return p.toString();
}

/** "+12%", "−30%", or "" when there is nothing to compare with. */
export function change(now: number, before: number): string {
  if (before === 0) return now === 0 ? "" : "new";
  const pct = Math.round(((now - before) / before) * 100);
  return pct === 0 ? "±0%" : pct > 0 ? `+${pct}%` : `−${Math.abs(pct)}%`;
}
