// Alerting in a project's settings: its channels (webhook, Slack, Teams,
// Jira, GitHub, email), each with a test send and the error that stopped
// its deliveries, and its alert rules with their status, value now, and
// history. Admins add, test, mute and delete; viewers only see. Secrets
// are typed in and never shown again (the server does not send them back).

import { useEffect, useState } from "preact/hooks";

import { api, type Schemas } from "./api";

type Channel = Schemas["ChannelView"];
type Alert = Schemas["AlertView"];
type AlertBody = Schemas["AlertBody"];
type Kind = Schemas["ChannelKind"];

/** Each kind's config fields: name, label, whether secret, whether optional. */
const FIELDS: Record<Kind, [string, string, boolean, boolean][]> = {
  webhook: [
    ["url", "URL", false, false],
    ["secret", "Signing secret (16+ characters)", true, false],
  ],
  slack: [["webhook_url", "Incoming webhook URL", true, false]],
  teams: [["webhook_url", "Workflows webhook URL", true, false]],
  jira: [
    ["base_url", "Site URL (https://you.atlassian.net)", false, false],
    ["email", "Account email", false, false],
    ["api_token", "API token", true, false],
    ["project_key", "Project key", false, false],
    ["issue_type", "Issue type (default Bug)", false, true],
  ],
  github: [
    ["repo", "Repository (owner/name)", false, false],
    ["token", "Token", true, false],
    ["api_url", "API URL (GitHub Enterprise)", false, true],
  ],
  email: [["to", "Recipients, comma-separated", false, false]],
};

const METRICS: [AlertBody["metric"], string][] = [
  ["error_count", "Errors"],
  ["error_rate", "Errors per page view"],
  ["new_error_group", "New error groups"],
  ["pageviews", "Page views"],
  ["vital_p75", "Vital p75"],
  ["anomaly", "Anomaly score"],
];

const SERIES: [NonNullable<AlertBody["series"]>, string][] = [
  ["pageviews", "page views"],
  ["error_rate", "error rate"],
  ["vital_p75", "vital p75"],
];

function when(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "–" : new Date(ms).toLocaleString();
}

/** The config a form's values make for a kind. */
export function configOf(kind: Kind, values: Record<string, string>): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const [name, , , optional] of FIELDS[kind]) {
    const value = (values[name] ?? "").trim();
    if (optional && !value) continue;
    config[name] = kind === "email" && name === "to" ? value.split(",").map((a) => a.trim()).filter(Boolean) : value;
  }
  return config;
}

export function AlertSettings(props: { base: string; admin: boolean; change: (work: () => Promise<unknown>, done: string) => void; version: number }) {
  const { base, admin } = props;
  const [channels, setChannels] = useState<Channel[]>([]);
  const [alerts, setAlerts] = useState<Alert[]>([]);
  useEffect(() => {
    api<Schemas["ChannelList"]>("GET", `${base}/channels`).then((a) => setChannels(a.channels));
    api<Schemas["AlertList"]>("GET", `${base}/alerts`).then((a) => setAlerts(a.alerts));
  }, [base, props.version]);
  const channelName = (id: string) => channels.find((c) => c.id === id)?.name ?? id;

  const test = (c: Channel) =>
    props.change(async () => {
      const sent = await api<Schemas["DeliveryView"]>("POST", `${base}/channels/${c.id}/test`);
      if (sent.status !== "delivered") throw new Error(`Test ${sent.status}: ${sent.last_error ?? ""}`);
    }, "Test message delivered.");

  return (
    <>
      <div class="card">
        <h2>Alert channels</h2>
        <table id="channels">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Destination</th>
              <th scope="col">Problem</th>
              {admin && <th scope="col" />}
            </tr>
          </thead>
          <tbody>
            {channels.map((c) => (
              <tr key={c.id}>
                <td>{c.name}</td>
                <td>{c.kind}</td>
                <td>
                  <code>{shownConfig(c)}</code>
                </td>
                <td class={c.last_error ? "error" : "muted"}>{c.last_error ? `${c.last_error} (${when(c.last_error_at)})` : "none"}</td>
                {admin && (
                  <td>
                    <button onClick={() => test(c)} aria-label={`Send a test to ${c.name}`}>
                      Test
                    </button>{" "}
                    <button class="danger" onClick={() => props.change(() => api("DELETE", `${base}/channels/${c.id}`), "Channel deleted.")}>
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {admin && <AddChannel onAdd={(body) => props.change(() => api("POST", `${base}/channels`, body), "Channel added.")} />}
      </div>

      <div class="card">
        <h2>Alert rules</h2>
        <table id="alerts">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Condition</th>
              <th scope="col">Status</th>
              <th scope="col">Now</th>
              <th scope="col">Channels</th>
              {admin && <th scope="col" />}
            </tr>
          </thead>
          <tbody>
            {alerts.map((a) => (
              <tr key={a.id}>
                <td>
                  {a.name}
                  <History base={base} alert={a} />
                </td>
                <td>
                  {a.metric}
                  {a.series ? ` of ${a.series}` : ""}
                  {a.vital ? ` ${a.vital}` : ""} {a.comparison === "gt" ? ">" : "<"} {a.threshold} over {a.window_s}s
                  {a.for_s > 0 && `, for ${a.for_s}s`}
                  {a.filters.path && ` on ${a.filters.path}`}
                </td>
                <td class={`status-${a.status}`}>{a.muted ? `${a.status}, muted` : a.status}</td>
                <td>{a.value ?? "–"}</td>
                <td>{a.channels.map(channelName).join(", ") || "none"}</td>
                {admin && (
                  <td>
                    <button
                      onClick={() =>
                        props.change(() => api("PUT", `${base}/alerts/${a.id}`, { ...bodyOf(a), muted: !a.muted }), a.muted ? "Rule unmuted." : "Rule muted.")
                      }
                    >
                      {a.muted ? "Unmute" : "Mute"}
                    </button>{" "}
                    <button class="danger" onClick={() => props.change(() => api("DELETE", `${base}/alerts/${a.id}`), "Rule deleted.")}>
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {admin && <AddAlert channels={channels} onAdd={(body) => props.change(() => api("POST", `${base}/alerts`, body), "Rule added.")} />}
      </div>
    </>
  );
}

/** A channel's destination as the server shows it (secrets left out). */
function shownConfig(c: Channel): string {
  const config = c.config as Record<string, unknown>;
  return Object.entries(config)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}`)
    .join(" · ");
}

/** The body that saves a rule as it is. */
function bodyOf(a: Alert): AlertBody {
  return {
    name: a.name,
    metric: a.metric,
    vital: (a.vital as AlertBody["vital"]) ?? undefined,
    comparison: a.comparison,
    threshold: a.threshold,
    window_s: a.window_s,
    for_s: a.for_s,
    cooldown_s: a.cooldown_s,
    filters: a.filters,
    channels: a.channels,
    muted: a.muted,
  };
}

/** A rule's incidents and deliveries, read when opened. */
function History(props: { base: string; alert: Alert }) {
  const [history, setHistory] = useState<Schemas["AlertHistory"] | null>(null);
  return (
    <details
      onToggle={(e) => {
        if ((e.currentTarget as HTMLDetailsElement).open) {
          api<Schemas["AlertHistory"]>("GET", `${props.base}/alerts/${props.alert.id}/history`).then(setHistory);
        }
      }}
    >
      <summary class="small">History</summary>
      {history && (
        <ul class="small">
          {history.deliveries.length === 0 && <li class="muted">No delivery yet.</li>}
          {history.deliveries.map((d) => (
            <li key={d.id}>
              {when(d.created_at)}: {d.state} → {d.status} after {d.attempts} attempt{d.attempts === 1 ? "" : "s"}
              {d.last_error ? ` (${d.last_error})` : ""}
            </li>
          ))}
        </ul>
      )}
    </details>
  );
}

function AddChannel(props: { onAdd: (body: Schemas["ChannelBody"]) => void }) {
  const [name, setName] = useState("");
  const [kind, setKind] = useState<Kind>("webhook");
  const [values, setValues] = useState<Record<string, string>>({});
  return (
    <form
      class="inline"
      id="add-channel"
      onSubmit={(e) => {
        e.preventDefault();
        props.onAdd({ name, kind, config: configOf(kind, values) as Schemas["ChannelBody"]["config"] });
        setName("");
        setValues({});
      }}
    >
      <label>
        Channel name
        <input id="channel-name" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
      </label>
      <label>
        Kind
        <select id="channel-kind" value={kind} onChange={(e) => (setKind(e.currentTarget.value as Kind), setValues({}))}>
          {(Object.keys(FIELDS) as Kind[]).map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </label>
      {FIELDS[kind].map(([field, label, secret, optional]) => {
        const input = {
          id: `channel-${field}`,
          autocomplete: "off",
          required: !optional,
          value: values[field] ?? "",
          onInput: (e: Event) => setValues({ ...values, [field]: (e.currentTarget as HTMLInputElement).value }),
        };
        return (
          <label key={field}>
            {label}
            {secret ? <input type="password" {...input} /> : <input type="text" {...input} />}
          </label>
        );
      })}
      <button type="submit" id="save-channel">
        Add channel
      </button>
    </form>
  );
}

function AddAlert(props: { channels: Channel[]; onAdd: (body: AlertBody) => void }) {
  const [name, setName] = useState("");
  const [metric, setMetric] = useState<AlertBody["metric"]>("error_count");
  const [vital, setVital] = useState("LCP");
  const [series, setSeries] = useState<NonNullable<AlertBody["series"]>>("pageviews");
  const needsVital = metric === "vital_p75" || (metric === "anomaly" && series === "vital_p75");
  const [comparison, setComparison] = useState<AlertBody["comparison"]>("gt");
  const [threshold, setThreshold] = useState("10");
  const [windowS, setWindowS] = useState("300");
  const [forS, setForS] = useState("0");
  const [path, setPath] = useState("");
  const [chosen, setChosen] = useState<string[]>([]);
  return (
    <form
      class="inline"
      id="add-alert"
      onSubmit={(e) => {
        e.preventDefault();
        props.onAdd({
          name,
          metric,
          vital: needsVital ? (vital as AlertBody["vital"]) : undefined,
          series: metric === "anomaly" ? series : undefined,
          comparison,
          threshold: Number(threshold),
          window_s: Number(windowS),
          for_s: Number(forS),
          filters: path && metric !== "new_error_group" && metric !== "anomaly" ? { path } : {},
          channels: chosen,
        });
        setName("");
      }}
    >
      <label>
        Rule name
        <input id="alert-name" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
      </label>
      <label>
        Metric
        <select id="alert-metric" value={metric} onChange={(e) => setMetric(e.currentTarget.value as AlertBody["metric"])}>
          {METRICS.map(([m, label]) => (
            <option key={m} value={m}>
              {label}
            </option>
          ))}
        </select>
      </label>
      {metric === "anomaly" && (
        <label>
          Series
          <select id="alert-series" value={series} onChange={(e) => setSeries(e.currentTarget.value as NonNullable<AlertBody["series"]>)}>
            {SERIES.map(([s, label]) => (
              <option key={s} value={s}>
                {label}
              </option>
            ))}
          </select>
        </label>
      )}
      {needsVital && (
        <label>
          Vital
          <select id="alert-vital" value={vital} onChange={(e) => setVital(e.currentTarget.value)}>
            {["LCP", "INP", "CLS", "FCP", "TTFB"].map((v) => (
              <option key={v}>{v}</option>
            ))}
          </select>
        </label>
      )}
      <label>
        Is
        <select id="alert-comparison" value={comparison} onChange={(e) => setComparison(e.currentTarget.value as AlertBody["comparison"])}>
          <option value="gt">above</option>
          <option value="lt">below</option>
        </select>
      </label>
      <label>
        Threshold
        <input id="alert-threshold" type="number" step="any" value={threshold} onInput={(e) => setThreshold(e.currentTarget.value)} required />
      </label>
      <label>
        Window (seconds)
        <input id="alert-window" type="number" min={1} max={86400} value={windowS} onInput={(e) => setWindowS(e.currentTarget.value)} required />
      </label>
      <label>
        For at least (seconds)
        <input id="alert-for" type="number" min={0} value={forS} onInput={(e) => setForS(e.currentTarget.value)} />
      </label>
      <label>
        Only on path (optional)
        <input id="alert-path" value={path} onInput={(e) => setPath(e.currentTarget.value)} />
      </label>
      <fieldset>
        <legend>Channels</legend>
        {props.channels.length === 0 && <span class="muted">Add a channel first.</span>}
        {props.channels.map((c) => (
          <label key={c.id} class="check">
            <input
              type="checkbox"
              checked={chosen.includes(c.id)}
              onChange={(e) => setChosen(e.currentTarget.checked ? [...chosen, c.id] : chosen.filter((id) => id !== c.id))}
            />
            {c.name}
          </label>
        ))}
      </fieldset>
      <button type="submit" id="save-alert">
        Add rule
      </button>
    </form>
  );
}
