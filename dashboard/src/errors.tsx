// Errors: the groups of a range (most frequent first), and a group's page:
// occurrences over time, releases, and its latest event with the
// source-mapped stack trace and the original source around each frame.
// Everything an event carries is shown as text.

import { useEffect, useState } from "preact/hooks";

import { LineChart } from "./charts";
import { RangePicker } from "./controls";
import { api, type Schemas } from "./api";

type GroupSummary = Schemas["ErrorGroupSummary"];
type GroupDetail = Schemas["ErrorGroupDetail"];
type Frame = Schemas["EventFrame"];
import { rangeOf, type RangeName } from "./query";

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** A sparkline of the group's events over the range. */
function Sparkline(props: { trend: number[] }) {
  const max = Math.max(1, ...props.trend);
  const step = props.trend.length > 1 ? 48 / (props.trend.length - 1) : 0;
  const points = props.trend.map((v, i) => `${(i * step).toFixed(1)},${(11 - (v / max) * 10).toFixed(1)}`).join(" ");
  return (
    <svg class="spark" viewBox="0 0 48 12" role="img" aria-label={`events over the range: ${props.trend.join(", ")}`}>
      <polyline points={points} />
    </svg>
  );
}

function title(g: GroupSummary): string {
  return `${g.error_type ?? "Error"}: ${g.message ?? ""}`;
}

export function ErrorList(props: { projectId: string; open: (fingerprint: string) => void }) {
  const [rangeName, setRangeName] = useState<RangeName>("24h");
  const [groups, setGroups] = useState<GroupSummary[] | null>(null);
  useEffect(() => {
    const range = rangeOf(rangeName, Date.now());
    const base = `/api/v1/projects/${encodeURIComponent(props.projectId)}`;
    api<Schemas["ErrorsAnswer"]>("GET", `${base}/errors?from=${range.from}&to=${range.to}`).then((a) => setGroups(a.groups));
  }, [props.projectId, rangeName]);
  return (
    <section>
      <div class="toolbar">
        <RangePicker id="errors-range" value={rangeName} onChange={setRangeName} />
      </div>
      {groups && groups.length === 0 && <p class="muted">No errors in this range.</p>}
      <table id="error-groups" class="card">
        <thead>
          <tr>
            <th scope="col">Error</th>
            <th scope="col" class="count">Events</th>
            <th scope="col" class="count">Users</th>
            <th scope="col">Trend</th>
            <th scope="col">Last seen</th>
            <th scope="col">First seen</th>
          </tr>
        </thead>
        <tbody>
          {(groups ?? []).map((g) => (
            <tr key={g.fingerprint}>
              <td>
                <button class="link" onClick={() => props.open(g.fingerprint)}>
                  {title(g)}
                </button>
              </td>
              <td class="count">{g.count}</td>
              <td class="count">{g.users}</td>
              <td>
                <Sparkline trend={g.trend} />
              </td>
              <td>{ago(g.last_seen)}</td>
              <td>{ago(g.first_seen)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function StackFrame(props: { frame: Frame }) {
  const f = props.frame;
  const where = `${f.file ?? "?"}${f.line ? `:${f.line}` : ""}${f.column ? `:${f.column}` : ""}`;
  return (
    <li class={f.in_app ? "frame in-app" : "frame"}>
      <div>
        <strong>{f.function ?? "(anonymous)"}</strong> <span class="muted">{where}</span>
        {!f.in_app && <span class="muted"> · library</span>}
      </div>
      {f.minified && (
        <div class="muted small">
          minified: {f.minified.function ?? "(anonymous)"} {f.minified.file}:{f.minified.line}:{f.minified.column}
        </div>
      )}
      {f.context && (
        <pre class="context">
          {f.context.pre_context.map((l) => `  ${l}\n`).join("")}
          <mark>{`> ${f.context.context_line}\n`}</mark>
          {f.context.post_context.map((l) => `  ${l}\n`).join("")}
        </pre>
      )}
    </li>
  );
}

export function ErrorGroup(props: { projectId: string; fingerprint: string; back: () => void }) {
  const [group, setGroup] = useState<GroupDetail | null | undefined>(undefined);
  useEffect(() => {
    const range = rangeOf("30d", Date.now());
    const base = `/api/v1/projects/${encodeURIComponent(props.projectId)}`;
    const path = `${base}/errors/${encodeURIComponent(props.fingerprint)}?from=${range.from}&to=${range.to}`;
    api<GroupDetail>("GET", path).then(setGroup, () => setGroup(null));
  }, [props.projectId, props.fingerprint]);
  if (group === undefined) return <p class="muted">Loading…</p>;
  if (group === null) return <p class="error">No such error group.</p>;
  const event = group.latest_event;
  return (
    <section>
      <button class="link" onClick={props.back}>
        ← All errors
      </button>
      <h2 id="group-title">{title(group)}</h2>
      <p class="muted">
        {group.count} events · {group.users} users · first seen {ago(group.first_seen)} · last seen {ago(group.last_seen)}
        {group.releases.length > 0 && ` · releases ${group.releases.join(", ")}`}
      </p>
      <h3>Occurrences, last 30 days</h3>
      <div class="card">
        <LineChart data={[group.series.map((p) => p.t / 1000), group.series.map((p) => p.count)]} label="Events" color="#dc2626" height={160} />
      </div>
      {event && (
        <>
          <h3>Latest event</h3>
          <p class="muted">
            {new Date(event.ts).toLocaleString()} · {event.url ?? ""} · {event.browser} on {event.os} ({event.device})
            {event.release && ` · ${event.release}`}
          </p>
          <ol class="card stack" id="stack">
            {event.frames.map((frame, i) => (
              <StackFrame key={i} frame={frame} />
            ))}
          </ol>
        </>
      )}
      <h3>Latest events</h3>
      <table id="latest-events" class="card">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Message</th>
            <th scope="col">Page</th>
            <th scope="col">Browser</th>
            <th scope="col">Release</th>
          </tr>
        </thead>
        <tbody>
          {group.latest_events.map((e) => (
            <tr key={e.id}>
              <td>{new Date(e.ts).toLocaleString()}</td>
              <td>{e.message ?? ""}</td>
              <td>{e.path}</td>
              <td>
                {e.browser} on {e.os} ({e.device})
              </td>
              <td>{e.release ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
