// The widgets of a dashboard: every number, chart and table the other pages
// show, each read from the query API over the dashboard's range and read
// again when the live feed says something changed. All data is rendered as
// text.

import { useEffect, useState } from "preact/hooks";

import { api, type Schemas } from "./api";
import { LineChart } from "./charts";
import { type Range } from "./query";

export type Widget = Schemas["Widget"];
export type WidgetView = Schemas["WidgetView"];

const NUMBERS: Record<Schemas["NumberMetric"], string> = {
  visitors: "Visitors",
  pageviews: "Page views",
  sessions: "Sessions",
  bounce_rate: "Bounce rate",
  visit_duration: "Visit duration",
  current_visitors: "Current visitors",
  errors: "Errors",
  lcp_p75: "LCP p75",
  inp_p75: "INP p75",
  cls_p75: "CLS p75",
  fcp_p75: "FCP p75",
  ttfb_p75: "TTFB p75",
};

const CHARTS: Record<Schemas["ChartSeries"], string> = {
  pageviews: "Page views over time",
  visitors: "Visitors over time",
  errors: "Errors over time",
  error_rate: "Errors per page view over time",
  events: "Custom events over time",
  live_pageviews: "Page views, last 30 minutes (live)",
};

const TABLES: Record<Schemas["TableSource"], string> = {
  page: "Pages",
  entry_page: "Entry pages",
  exit_page: "Exit pages",
  referrer: "Referrers",
  device: "Devices",
  browser: "Browsers",
  os: "Operating systems",
  release: "Releases",
  error_groups: "Error groups",
  event_names: "Custom events",
};

/** Every view a widget can show, with its name and a size that suits it. */
export const CATALOGUE: { view: WidgetView; label: string; w: number; h: number }[] = [
  ...Object.entries(NUMBERS).map(([metric, label]) => ({
    view: { kind: "number", metric } as WidgetView,
    label,
    w: 3,
    h: 2,
  })),
  ...Object.entries(CHARTS).map(([series, label]) => ({ view: { kind: "chart", series } as WidgetView, label, w: 6, h: 4 })),
  ...Object.entries(TABLES).map(([table, label]) => ({ view: { kind: "table", table } as WidgetView, label, w: 4, h: 5 })),
];

/** A stable key of a view, for the catalogue's `<select>`. */
export function viewKey(view: WidgetView): string {
  switch (view.kind) {
    case "number":
      return `number:${view.metric}`;
    case "chart":
      return `chart:${view.series}`;
    case "table":
      return `table:${view.table}`;
  }
}

export function viewLabel(view: WidgetView): string {
  switch (view.kind) {
    case "number":
      return NUMBERS[view.metric];
    case "chart":
      return CHARTS[view.series];
    case "table":
      return TABLES[view.table];
  }
}

const MINUTE = 60_000;

function span(range: Range): string {
  return `from=${range.from}&to=${range.to}&interval=${range.interval}`;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}

/** The number a widget shows, as text. */
export async function readNumber(base: string, metric: Schemas["NumberMetric"], range: Range): Promise<string> {
  switch (metric) {
    case "visitors":
    case "pageviews": {
      const answer = await api<Schemas["PageviewsAnswer"]>("GET", `${base}/pageviews?${span(range)}`);
      return String(answer.total[metric]);
    }
    case "sessions":
    case "bounce_rate":
    case "visit_duration": {
      const s = await api<Schemas["SessionsSummary"]>("GET", `${base}/sessions/summary?from=${range.from}&to=${range.to}`);
      if (metric === "sessions") return String(s.sessions);
      return metric === "bounce_rate" ? `${Math.round(s.bounce_rate * 100)}%` : duration(s.avg_duration_ms);
    }
    case "current_visitors":
      return String((await api<Schemas["CurrentVisitors"]>("GET", `${base}/visitors/current`)).visitors);
    case "errors": {
      const points = await api<Schemas["ErrorRatePoint"][]>("GET", `${base}/error-rate?${span(range)}`);
      return String(points.reduce((sum, p) => sum + p.errors, 0));
    }
    default: {
      const name = metric.replace("_p75", "").toUpperCase();
      const v = await api<Schemas["VitalsAnswer"]>("GET", `${base}/vitals?name=${name}&from=${range.from}&to=${range.to}`);
      if (v.p75 === null || v.p75 === undefined) return "–";
      return name === "CLS" ? v.p75.toFixed(3) : `${Math.round(v.p75)} ms`;
    }
  }
}

/** A chart's points: seconds on x, values on y. */
export async function readSeries(base: string, series: Schemas["ChartSeries"], range: Range): Promise<[number[], number[]]> {
  const pairs = (points: { t: number; v: number }[]): [number[], number[]] => [
    points.map((p) => p.t / 1000),
    points.map((p) => p.v),
  ];
  switch (series) {
    case "pageviews":
    case "visitors": {
      const answer = await api<Schemas["PageviewsAnswer"]>("GET", `${base}/pageviews?${span(range)}`);
      return pairs(answer.series.map((p) => ({ t: p.t, v: p[series] })));
    }
    case "errors":
    case "error_rate": {
      const points = await api<Schemas["ErrorRatePoint"][]>("GET", `${base}/error-rate?${span(range)}`);
      return pairs(points.map((p) => ({ t: p.t, v: series === "errors" ? p.errors : p.rate })));
    }
    case "events": {
      const answer = await api<Schemas["EventsAnswer"]>("GET", `${base}/events?${span(range)}`);
      return pairs(answer.series.map((p) => ({ t: p.t, v: p.count })));
    }
    case "live_pageviews": {
      const now = Date.now();
      const first = Math.floor((now - 30 * MINUTE) / MINUTE) * MINUTE;
      const answer = await api<Schemas["PageviewsAnswer"]>("GET", `${base}/pageviews?from=${first}&to=${now + MINUTE}&interval=minute`);
      const counts = new Map(answer.series.map((p) => [p.t, p.pageviews]));
      const points = [];
      for (let t = first; t <= now; t += MINUTE) points.push({ t, v: counts.get(t) ?? 0 });
      return pairs(points);
    }
  }
}

/** A table's rows: a label and a count. */
export async function readTable(base: string, table: Schemas["TableSource"], range: Range): Promise<[string, number][]> {
  const within = `from=${range.from}&to=${range.to}`;
  if (table === "error_groups") {
    const answer = await api<Schemas["ErrorsAnswer"]>("GET", `${base}/errors?${within}`);
    return answer.groups.slice(0, 10).map((g) => [`${g.error_type ?? "Error"}: ${g.message ?? ""}`, g.count]);
  }
  if (table === "event_names") {
    const answer = await api<Schemas["EventsAnswer"]>("GET", `${base}/events?${within}`);
    return answer.names.slice(0, 10).map((n) => [n.name, n.count]);
  }
  const answer = await api<Schemas["BreakdownAnswer"]>("GET", `${base}/breakdown?${within}&dimension=${table}&limit=10`);
  return answer.rows.map((r) => [r.value || "(none)", r.visitors ?? r.sessions ?? r.pageviews ?? 0]);
}

type Shown = { kind: "number"; text: string } | { kind: "chart"; data: [number[], number[]] } | { kind: "table"; rows: [string, number][] };

/** What a widget shows, read again whenever `tick` moves. */
export function WidgetBody(props: { base: string; view: WidgetView; range: Range; tick: number }) {
  const { base, view, range, tick } = props;
  const [shown, setShown] = useState<Shown | null>(null);
  const [failed, setFailed] = useState("");
  useEffect(() => {
    let current = true;
    const read = async (): Promise<Shown> => {
      switch (view.kind) {
        case "number":
          return { kind: "number", text: await readNumber(base, view.metric, range) };
        case "chart":
          return { kind: "chart", data: await readSeries(base, view.series, range) };
        case "table":
          return { kind: "table", rows: await readTable(base, view.table, range) };
      }
    };
    read().then(
      (s) => current && (setShown(s), setFailed("")),
      (e: unknown) => current && setFailed(e instanceof Error ? e.message : String(e)),
    );
    return () => {
      current = false;
    };
  }, [base, viewKey(view), range.from, range.to, tick]);

  if (failed) return <p class="error" role="alert">{failed}</p>;
  if (!shown) return <p class="muted">Loading…</p>;
  switch (shown.kind) {
    case "number":
      return <div class="number widget-number">{shown.text}</div>;
    case "chart":
      return <LineChart data={shown.data} label={viewLabel(view)} />;
    case "table":
      return (
        <table class="widget-table">
          <thead>
            <tr>
              <th scope="col">{viewLabel(view)}</th>
              <th scope="col" class="count">
                Count
              </th>
            </tr>
          </thead>
          <tbody>
            {shown.rows.map(([label, count], i) => (
              <tr key={i}>
                <td>{label}</td>
                <td class="count">{count}</td>
              </tr>
            ))}
          </tbody>
        </table>
      );
  }
}
