// A project's overview: today's visitors, page views, sessions, bounce
// rate, visit duration and current visitors, and page views per minute for
// the last 30 minutes, redrawn whenever the live feed says they changed.

import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import { api } from "./api";

interface Pageviews {
  total: { pageviews: number; visitors: number };
  series: { t: number; pageviews: number; visitors: number }[];
}

interface Summary {
  sessions: number;
  bounce_rate: number;
  avg_duration_ms: number;
}

interface Numbers {
  pageviews: number;
  visitors: number;
  sessions: number;
  bounceRate: number;
  durationMs: number;
  current: number;
}

const MINUTE = 60_000;
const WINDOW = 30 * MINUTE;

function startOfDay(now: number): number {
  const d = new Date(now);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}

/** Page views per minute, with empty minutes as zeros. */
function perMinute(series: Pageviews["series"], now: number): [number[], number[]] {
  const first = Math.floor((now - WINDOW) / MINUTE) * MINUTE;
  const counts = new Map(series.map((p) => [p.t, p.pageviews]));
  const xs: number[] = [];
  const ys: number[] = [];
  for (let t = first; t <= now; t += MINUTE) {
    xs.push(t / 1000);
    ys.push(counts.get(t) ?? 0);
  }
  return [xs, ys];
}

export function Overview(props: { projectId: string }) {
  const { projectId } = props;
  const [numbers, setNumbers] = useState<Numbers | null>(null);
  const chart = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const base = `/api/v1/projects/${encodeURIComponent(projectId)}`;
    const load = async () => {
      const now = Date.now();
      const [today, recent, summary, current] = await Promise.all([
        api<Pageviews>("GET", `${base}/pageviews?interval=hour&from=${startOfDay(now)}&to=${now + 1}`),
        api<Pageviews>("GET", `${base}/pageviews?interval=minute&from=${now - WINDOW}&to=${now + MINUTE}`),
        api<Summary>("GET", `${base}/sessions/summary?from=${startOfDay(now)}&to=${now + 1}`),
        api<{ visitors: number }>("GET", `${base}/visitors/current`),
      ]);
      setNumbers({
        pageviews: today.total.pageviews,
        visitors: today.total.visitors,
        sessions: summary.sessions,
        bounceRate: summary.bounce_rate,
        durationMs: summary.avg_duration_ms,
        current: current.visitors,
      });
      const data = perMinute(recent.series, now);
      if (plot.current) {
        plot.current.setData(data);
      } else if (chart.current) {
        plot.current = new uPlot(
          {
            width: chart.current.clientWidth || 600,
            height: 220,
            series: [{}, { label: "Page views", stroke: "#3b82f6", fill: "rgba(59,130,246,0.15)" }],
            axes: [{}, { size: 40 }],
          },
          data,
          chart.current,
        );
      }
      chart.current?.setAttribute("data-pageviews", String(data[1].reduce((a, b) => a + b, 0)));
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
      plot.current?.destroy();
      plot.current = null;
    };
  }, [projectId]);

  const cards: [string, string, string][] = numbers
    ? [
        ["visitors", "Visitors", String(numbers.visitors)],
        ["pageviews", "Page views", String(numbers.pageviews)],
        ["sessions", "Sessions", String(numbers.sessions)],
        ["bounce", "Bounce rate", `${Math.round(numbers.bounceRate * 100)}%`],
        ["duration", "Visit duration", duration(numbers.durationMs)],
        ["current", "Current visitors", String(numbers.current)],
      ]
    : [];
  return (
    <section>
      <h2>Today</h2>
      <div class="cards">
        {cards.map(([id, label, value]) => (
          <div class="card" key={id}>
            <div class="muted">{label}</div>
            <div class="number" id={`metric-${id}`}>
              {value}
            </div>
          </div>
        ))}
      </div>
      <h2>Page views, last 30 minutes</h2>
      <div class="card" id="live-chart" ref={chart} />
    </section>
  );
}
