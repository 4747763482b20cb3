// The events explorer: custom events over time per name, the values of
// their properties (a click on a value filters by it), property filters,
// and segments (saved filters) applied or saved.

import { useEffect, useState } from "preact/hooks";

import { LineChart } from "./charts";
import { RangePicker, SegmentBar } from "./controls";
import { api, type Schemas } from "./api";

type EventsAnswer = Schemas["EventsAnswer"];
import { rangeOf, type RangeName } from "./query";

/** The filters `events` takes besides the name: `prop.<key>` and these. */
const EVENT_FILTERS = ["path", "device", "browser", "release"];
const appliesToEvents = (name: string) => EVENT_FILTERS.includes(name) || (name.startsWith("prop.") && name.length > 5);

export function Events(props: { projectId: string; admin: boolean }) {
  const [rangeName, setRangeName] = useState<RangeName>("7d");
  const [name, setName] = useState("");
  const [filters, setFilters] = useState<Record<string, string>>({});
  const [answer, setAnswer] = useState<EventsAnswer | null>(null);
  const [names, setNames] = useState<{ name: string; count: number }[]>([]);
  const filterKey = JSON.stringify(filters);

  useEffect(() => {
    setName("");
    setFilters({});
  }, [props.projectId]);

  useEffect(() => {
    const range = rangeOf(rangeName, Date.now());
    const base = `/api/v1/projects/${encodeURIComponent(props.projectId)}/events`;
    const q = new URLSearchParams({ from: String(range.from), to: String(range.to), interval: range.interval });
    // The names of every event of the range, whatever is filtered.
    api<EventsAnswer>("GET", `${base}?${q}`).then((all) => setNames(all.names));
    if (name) q.set("name", name);
    for (const [key, value] of Object.entries(filters)) q.append(key, value);
    api<EventsAnswer>("GET", `${base}?${q}`).then(setAnswer);
  }, [props.projectId, rangeName, name, filterKey]);

  const active = Object.entries(filters);
  return (
    <section>
      <div class="toolbar">
        <RangePicker value={rangeName} onChange={setRangeName} />
        <label>
          Event
          <select id="event-name" value={name} onChange={(e) => setName(e.currentTarget.value)}>
            <option value="">All events</option>
            {names.map((n) => (
              <option key={n.name} value={n.name}>
                {n.name} ({n.count})
              </option>
            ))}
          </select>
        </label>
        <SegmentBar projectId={props.projectId} admin={props.admin} filters={filters} applies={appliesToEvents} onApply={setFilters} />
        {active.map(([key, value]) => (
          <button
            key={key}
            class="chip"
            aria-label={`Remove the filter ${key} ${value}`}
            onClick={() => setFilters(Object.fromEntries(active.filter(([k]) => k !== key)))}
          >
            {key}: {value} ×
          </button>
        ))}
      </div>
      <h2>
        <span id="events-total">{answer?.total ?? 0}</span> events
      </h2>
      <div class="card">
        <LineChart data={[(answer?.series ?? []).map((p) => p.t / 1000), (answer?.series ?? []).map((p) => p.count)]} label={name || "All events"} color="#7c3aed" height={200} />
      </div>
      <div class="tables">
        {Object.entries(answer?.breakdown ?? {}).map(([key, values]) => (
          <div class="card" key={key}>
            <h3>{key}</h3>
            <table id={`prop-${key}`}>
              <tbody>
                {values.map((v) => (
                  <tr key={v.value}>
                    <td>
                      <button class="link" onClick={() => setFilters({ ...filters, [`prop.${key}`]: v.value })}>
                        {v.value}
                      </button>
                    </td>
                    <td class="count">{v.count}</td>
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
