// The events explorer: custom events over time per name, the values of
// their properties (a click on a value filters by it), property filters.

import { useEffect, useState } from "preact/hooks";

import { LineChart } from "./charts";
import { RangePicker } from "./controls";
import { api, type Schemas } from "./api";

type EventsAnswer = Schemas["EventsAnswer"];
import { rangeOf, type RangeName } from "./query";

export function Events(props: { projectId: string }) {
  const [rangeName, setRangeName] = useState<RangeName>("7d");
  const [name, setName] = useState("");
  const [props_, setProps] = useState<Record<string, string>>({});
  const [answer, setAnswer] = useState<EventsAnswer | null>(null);
  const [names, setNames] = useState<{ name: string; count: number }[]>([]);
  const propsKey = JSON.stringify(props_);

  useEffect(() => {
    setName("");
    setProps({});
  }, [props.projectId]);

  useEffect(() => {
    const range = rangeOf(rangeName, Date.now());
    const base = `/api/v1/projects/${encodeURIComponent(props.projectId)}/events`;
    const q = new URLSearchParams({ from: String(range.from), to: String(range.to), interval: range.interval });
    // The names of every event of the range, whatever is filtered.
    api<EventsAnswer>("GET", `${base}?${q}`).then((all) => setNames(all.names));
    if (name) q.set("name", name);
    for (const [key, value] of Object.entries(props_)) q.append(`prop.${key}`, value);
    api<EventsAnswer>("GET", `${base}?${q}`).then(setAnswer);
  }, [props.projectId, rangeName, name, propsKey]);

  const active = Object.entries(props_);
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
        {active.map(([key, value]) => (
          <button
            key={key}
            class="chip"
            aria-label={`Remove the filter ${key} ${value}`}
            onClick={() => setProps(Object.fromEntries(active.filter(([k]) => k !== key)))}
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
                      <button class="link" onClick={() => setProps({ ...props_, [key]: v.value })}>
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
