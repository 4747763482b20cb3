// A project's overview: visitors, page views, sessions, bounce rate, visit
// duration over a chosen range against the range before it, current
// visitors, the pages, referrers, devices, browsers and operating systems
// (a click on a row filters the whole page), and page views per minute for
// the last 30 minutes, redrawn whenever the live feed says they changed.

import { useEffect, useState } from "preact/hooks";

import { LineChart, type Series } from "./charts";
import { RangePicker, SegmentBar } from "./controls";
import { api, type Schemas } from "./api";

type Pageviews = Schemas["PageviewsAnswer"];
type Summary = Schemas["SessionsSummary"];
type BreakdownRow = Schemas["BreakdownRow"];
import { DIMENSIONS, FILTER_NAMES, change, params, previous, rangeOf, type Filters, type Range, type RangeName } from "./query";

interface Numbers {
  visitors: number;
  pageviews: number;
  sessions: number;
  bounceRate: number;
  durationMs: number;
}

const MINUTE = 60_000;
const LIVE_WINDOW = 30 * MINUTE;

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}

/** Page views per minute, with empty minutes as zeros. */
function perMinute(series: Pageviews["series"], now: number): Series {
  const first = Math.floor((now - LIVE_WINDOW) / MINUTE) * MINUTE;
  const counts = new Map(series.map((p) => [p.t, p.pageviews]));
  const xs: number[] = [];
  const ys: number[] = [];
  for (let t = first; t <= now; t += MINUTE) {
    xs.push(t / 1000);
    ys.push(counts.get(t) ?? 0);
  }
  return [xs, ys];
}

async function numbersOf(base: string, range: Range, filters: Filters): Promise<Numbers> {
  const [pageviews, summary] = await Promise.all([
    api<Pageviews>("GET", `${base}/pageviews?${params(range, filters, { interval: range.interval })}`),
    api<Summary>("GET", `${base}/sessions/summary?${params(range, filters)}`),
  ]);
  return {
    visitors: pageviews.total.visitors,
    pageviews: pageviews.total.pageviews,
    sessions: summary.sessions,
    bounceRate: summary.bounce_rate,
    durationMs: summary.avg_duration_ms,
  };
}

export function Overview(props: { projectId: string; admin: boolean }) {
  const { projectId } = props;
  const [rangeName, setRangeName] = useState<RangeName>("today");
  const [filters, setFilters] = useState<Filters>({});
  const [numbers, setNumbers] = useState<{ now: Numbers; before: Numbers } | null>(null);
  const [current, setCurrent] = useState<number | null>(null);
  const [tables, setTables] = useState<Record<string, BreakdownRow[]>>({});
  const [live, setLive] = useState<Series>([[], []]);
  const filterKey = JSON.stringify(filters);

  useEffect(() => setFilters({}), [projectId]);

  useEffect(() => {
    const base = `/api/v1/projects/${encodeURIComponent(projectId)}`;
    const load = async () => {
      const nowMs = Date.now();
      const range = rangeOf(rangeName, nowMs);
      const live: Range = { from: nowMs - LIVE_WINDOW, to: nowMs + MINUTE, interval: "hour" };
      const [now, before, visitors, recent, ...breakdowns] = await Promise.all([
        numbersOf(base, range, filters),
        numbersOf(base, previous(range), filters),
        api<Schemas["CurrentVisitors"]>("GET", `${base}/visitors/current`),
        api<Pageviews>("GET", `${base}/pageviews?${params(live, filters, { interval: "minute" })}`),
        ...DIMENSIONS.map((d) =>
          api<Schemas["BreakdownAnswer"]>("GET", `${base}/breakdown?${params(range, filters, { dimension: d.dimension, limit: "10" })}`),
        ),
      ]);
      setNumbers({ now, before });
      setCurrent(visitors.visitors);
      setTables(Object.fromEntries(DIMENSIONS.map((d, i) => [d.dimension, breakdowns[i].rows])));
      setLive(perMinute(recent.series, nowMs));
    };
    void load();
    // The live feed says when page views changed; the numbers are re-read.
    const feed = new EventSource(`${base}/live`);
    let pending: ReturnType<typeof setTimeout> | undefined;
    const changed = () => {
      clearTimeout(pending);
      pending = setTimeout(() => void load(), 100);
    };
    feed.addEventListener("pageviews", changed);
    feed.addEventListener("lagged", changed);
    return () => {
      feed.close();
      clearTimeout(pending);
    };
  }, [projectId, rangeName, filterKey]);

  const cards: [string, string, string, string][] = numbers
    ? [
        ["visitors", "Visitors", String(numbers.now.visitors), change(numbers.now.visitors, numbers.before.visitors)],
        ["pageviews", "Page views", String(numbers.now.pageviews), change(numbers.now.pageviews, numbers.before.pageviews)],
        ["sessions", "Sessions", String(numbers.now.sessions), change(numbers.now.sessions, numbers.before.sessions)],
        [
          "bounce",
          "Bounce rate",
          `${Math.round(numbers.now.bounceRate * 100)}%`,
          change(Math.round(numbers.now.bounceRate * 100), Math.round(numbers.before.bounceRate * 100)),
        ],
        ["duration", "Visit duration", duration(numbers.now.durationMs), change(numbers.now.durationMs, numbers.before.durationMs)],
      ]
    : [];
  const setFilter = (name: keyof Filters, value: string | undefined) => setFilters({ ...filters, [name]: value });
  const active = Object.entries(filters).filter(([, v]) => v !== undefined) as [keyof Filters, string][];

  return (
    <section>
      <div class="toolbar">
        <RangePicker id="range" value={rangeName} onChange={setRangeName} />
        <SegmentBar
          projectId={projectId}
          admin={props.admin}
          filters={filters}
          applies={(name) => FILTER_NAMES.includes(name as keyof Filters)}
          onApply={(chosen) => setFilters(chosen as Filters)}
        />
        {active.map(([name, value]) => (
          <button key={name} class="chip" aria-label={`Remove the filter ${name} ${value}`} onClick={() => setFilter(name, undefined)}>
            {name}: {value || "(none)"} ×
          </button>
        ))}
        <span class="muted" id="metric-current">
          {current === null ? "" : `${current} current visitor${current === 1 ? "" : "s"}`}
        </span>
      </div>
      <div class="cards">
        {cards.map(([id, label, value, delta]) => (
          <div class="card" key={id}>
            <div class="muted">{label}</div>
            <div class="number" id={`metric-${id}`}>
              {value}
            </div>
            <div class="muted delta" id={`change-${id}`}>
              {delta && `${delta} vs the period before`}
            </div>
          </div>
        ))}
      </div>
      <h2>Page views, last 30 minutes</h2>
      <div class="card">
        <LineChart id="live-chart" data={live} label="Page views per minute" height={220} />
      </div>
      <div class="tables">
        {DIMENSIONS.map((d) => (
          <div class="card" key={d.dimension}>
            <h3>{d.label}</h3>
            <table id={`table-${d.dimension}`}>
              <thead>
                <tr>
                  <th scope="col">{d.label}</th>
                  <th scope="col" class="count">
                    Visitors
                  </th>
                </tr>
              </thead>
              <tbody>
                {(tables[d.dimension] ?? []).map((row) => (
                  <tr key={row.value}>
                    <td>
                      <button class="link" onClick={() => setFilter(d.filter, row.value)}>
                        {row.value || "(none)"}
                      </button>
                    </td>
                    <td class="count">{row.visitors ?? row.pageviews ?? 0}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
      </div>
    </section>
  );
}
