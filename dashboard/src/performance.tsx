// Performance: the p75 of each Core Web Vital with its good / needs
// improvement / poor shares (Google's thresholds, rated by the server), for
// all pages or one device class; the chosen metric's p75 per page and per
// day.

import { useEffect, useState } from "preact/hooks";

import { LineChart, type Series } from "./charts";
import { RangePicker } from "./controls";
import { api, type Schemas } from "./api";

type Vitals = Schemas["VitalsAnswer"];
import { rangeOf, type RangeName } from "./query";

const METRICS = ["LCP", "INP", "CLS", "FCP", "TTFB", "FID"] as const;
type Metric = (typeof METRICS)[number];
const DEVICES = ["", "desktop", "mobile", "tablet"];
const DAY = 86_400_000;

function shown(metric: string, value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  return metric === "CLS" ? value.toFixed(3) : `${Math.round(value)} ms`;
}

function pct(share: number): string {
  return `${Math.round(share * 100)}%`;
}

export function Performance(props: { projectId: string }) {
  const [rangeName, setRangeName] = useState<RangeName>("7d");
  const [device, setDevice] = useState("");
  const [metric, setMetric] = useState<Metric>("LCP");
  const [vitals, setVitals] = useState<Vitals[]>([]);
  const [pages, setPages] = useState<[string, Vitals][]>([]);
  const [daily, setDaily] = useState<Series>([[], []]);
  const base = `/api/v1/projects/${encodeURIComponent(props.projectId)}`;

  useEffect(() => {
    const range = rangeOf(rangeName, Date.now());
    const query = (name: string, extra: Record<string, string> = {}) => {
      const p = new URLSearchParams({ name, from: String(range.from), to: String(range.to), ...extra });
      if (device) p.set("device", device);
      return api<Vitals>("GET", `${base}/vitals?${p}`);
    };
    Promise.all(METRICS.map((m) => query(m))).then(setVitals);
    api<Schemas["BreakdownAnswer"]>("GET", `${base}/breakdown?dimension=page&limit=10&from=${range.from}&to=${range.to}`)
      .then((b) => Promise.all(b.rows.map(async (row) => [row.value, await query(metric, { path: row.value })] as [string, Vitals])))
      .then(setPages);
  }, [props.projectId, rangeName, device, metric]);

  useEffect(() => {
    const days = 14;
    const today = new Date();
    today.setHours(0, 0, 0, 0);
    const starts = Array.from({ length: days }, (_, i) => today.getTime() - (days - 1 - i) * DAY);
    Promise.all(
      starts.map((from) => {
        const p = new URLSearchParams({ name: metric, from: String(from), to: String(from + DAY) });
        if (device) p.set("device", device);
        return api<Vitals>("GET", `${base}/vitals?${p}`);
      }),
    ).then((answers) => setDaily([starts.map((t) => t / 1000), answers.map((v) => v.p75 ?? null)]));
  }, [props.projectId, device, metric]);

  return (
    <section>
      <div class="toolbar">
        <RangePicker value={rangeName} onChange={setRangeName} />
        <label>
          Device
          <select id="vitals-device" value={device} onChange={(e) => setDevice(e.currentTarget.value)}>
            {DEVICES.map((d) => (
              <option key={d} value={d}>
                {d || "All devices"}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div class="cards">
        {vitals.map((v) => (
          <button
            key={v.name}
            class={v.name === metric ? "card vital selected" : "card vital"}
            id={`vital-${v.name}`}
            aria-pressed={v.name === metric}
            onClick={() => setMetric(v.name as Metric)}
          >
            <div class="muted">{v.name} p75</div>
            <div class="number">{shown(v.name, v.p75)}</div>
            <div class="shares" aria-label={`good ${pct(v.good)}, needs improvement ${pct(v.needs_improvement)}, poor ${pct(v.poor)}`}>
              <span class="good" style={{ flexGrow: v.good }} />
              <span class="ni" style={{ flexGrow: v.needs_improvement }} />
              <span class="poor" style={{ flexGrow: v.poor }} />
            </div>
            <div class="muted small">
              {v.count} measurements · {pct(v.good)} good
            </div>
          </button>
        ))}
      </div>
      <h2>{metric} p75, last 14 days</h2>
      <div class="card">
        <LineChart data={daily} label={`${metric} p75`} color="#16a34a" height={180} />
      </div>
      <h2>{metric} p75 by page</h2>
      <table id="vitals-pages" class="card">
        <thead>
          <tr>
            <th scope="col">Page</th>
            <th scope="col" class="count">p75</th>
            <th scope="col" class="count">Good</th>
            <th scope="col" class="count">Measurements</th>
          </tr>
        </thead>
        <tbody>
          {pages.map(([path, v]) => (
            <tr key={path}>
              <td>{path}</td>
              <td class="count">{shown(metric, v.p75)}</td>
              <td class="count">{pct(v.good)}</td>
              <td class="count">{v.count}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
