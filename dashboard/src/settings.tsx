// Settings of a project: its name and allowed origins, ingest keys, secret
// keys, members, and alert channels and rules (alerts.tsx). A viewer sees them and no control to change them (the
// server refuses the changes anyway).

import { useEffect, useState } from "preact/hooks";

import { AlertSettings } from "./alerts";
import { api, type Project, type Schemas } from "./api";

type IngestKey = Schemas["IngestKeyView"];
type SecretKey = Schemas["SecretKeyView"];
type Member = Schemas["Member"];
type UserEntry = Schemas["UserView"];

function when(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "never" : new Date(ms).toLocaleString();
}

export function Settings(props: { projectId: string; admin: boolean; onRenamed: () => void }) {
  const base = `/api/v1/projects/${encodeURIComponent(props.projectId)}`;
  const [project, setProject] = useState<Project | null>(null);
  const [name, setName] = useState("");
  const [origins, setOrigins] = useState("");
  const [ingestKeys, setIngestKeys] = useState<IngestKey[]>([]);
  const [secretKeys, setSecretKeys] = useState<SecretKey[]>([]);
  const [members, setMembers] = useState<Member[]>([]);
  const [users, setUsers] = useState<UserEntry[]>([]);
  const [newSecret, setNewSecret] = useState("");
  const [message, setMessage] = useState("");
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);

  useEffect(() => {
    api<Project>("GET", base).then((p) => {
      setProject(p);
      setName(p.name);
      setOrigins(p.allowed_origins.join("\n"));
    });
    api<Schemas["IngestKeyList"]>("GET", `${base}/ingest-keys`).then((a) => setIngestKeys(a.keys));
    api<Schemas["MemberList"]>("GET", `${base}/members`).then((a) => setMembers(a.members));
    if (props.admin) {
      api<Schemas["SecretKeyList"]>("GET", `${base}/keys`).then((a) => setSecretKeys(a.keys));
      api<Schemas["UserList"]>("GET", "/api/v1/users").then((a) => setUsers(a.users), () => setUsers([]));
    }
  }, [props.projectId, props.admin, version]);

  /** Runs a change, then re-reads; says what went wrong if it did. */
  const change = async (work: () => Promise<unknown>, done: string) => {
    setMessage("");
    try {
      await work();
      setMessage(done);
      reload();
    } catch (err) {
      setMessage(err instanceof Error ? err.message : String(err));
    }
  };

  if (!project) return <p class="muted">Loading…</p>;
  return (
    <section id="settings">
      {message && (
        <p role="status" id="settings-message">
          {message}
        </p>
      )}
      <div class="card">
        <h2>Project</h2>
        {props.admin ? (
          <form
            class="stacked"
            onSubmit={(e) => {
              e.preventDefault();
              const allowed = origins.split("\n").map((o) => o.trim()).filter(Boolean);
              void change(() => api("PATCH", base, { name, allowed_origins: allowed }).then(props.onRenamed), "Saved.");
            }}
          >
            <label>
              Name
              <input id="project-name" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
            </label>
            <label>
              Allowed origins, one per line (browser ingest from any other origin is refused; none: any)
              <textarea id="allowed-origins" rows={3} value={origins} onInput={(e) => setOrigins(e.currentTarget.value)} />
            </label>
            <button type="submit" id="save-project">
              Save
            </button>
          </form>
        ) : (
          <dl>
            <dt>Name</dt>
            <dd>{project.name}</dd>
            <dt>Allowed origins</dt>
            <dd id="allowed-origins-text">{project.allowed_origins.join(", ") || "any"}</dd>
          </dl>
        )}
      </div>

      <div class="card">
        <h2>Ingest keys</h2>
        <table id="ingest-keys">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Key</th>
              <th scope="col">Limit</th>
              <th scope="col">Last used</th>
              {props.admin && <th scope="col" />}
            </tr>
          </thead>
          <tbody>
            {ingestKeys.map((k) => (
              <tr key={k.id} class={k.revoked_at ? "muted" : ""}>
                <td>{k.name}</td>
                <td>
                  <code>{k.key}</code>
                </td>
                <td>{k.rate_limit_per_s == null ? "none" : `${k.rate_limit_per_s}/s`}</td>
                <td>{k.revoked_at ? `revoked ${when(k.revoked_at)}` : when(k.last_used_at)}</td>
                {props.admin && (
                  <td>
                    {!k.revoked_at && (
                      <button class="danger" onClick={() => change(() => api("DELETE", `${base}/ingest-keys/${k.id}`), "Key revoked.")}>
                        Revoke
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {props.admin && <AddIngestKey onAdd={(body) => change(() => api("POST", `${base}/ingest-keys`, body), "Key added.")} />}
      </div>

      {props.admin && (
        <div class="card">
          <h2>Secret keys</h2>
          {newSecret && (
            <p id="new-secret">
              The new secret, shown only now: <code>{newSecret}</code>
            </p>
          )}
          <table id="secret-keys">
            <tbody>
              {secretKeys.map((k) => (
                <tr key={k.id} class={k.revoked_at ? "muted" : ""}>
                  <td>{k.name}</td>
                  <td>{k.role}</td>
                  <td>{k.revoked_at ? `revoked ${when(k.revoked_at)}` : `last used ${when(k.last_used_at)}`}</td>
                  <td>
                    {!k.revoked_at && (
                      <button class="danger" onClick={() => change(() => api("DELETE", `${base}/keys/${k.id}`), "Key revoked.")}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <AddSecretKey
            onAdd={(body) =>
              change(async () => setNewSecret((await api<Schemas["CreatedKeyView"]>("POST", `${base}/keys`, body)).secret), "Key created.")
            }
          />
        </div>
      )}

      <div class="card">
        <h2>Members</h2>
        <table id="members">
          <tbody>
            {members.map((m) => (
              <tr key={m.user.id}>
                <td>{m.user.email}</td>
                <td>
                  {props.admin ? (
                    <select
                      aria-label={`Role of ${m.user.email}`}
                      value={m.role}
                      onChange={(e) => change(() => api("PUT", `${base}/members/${m.user.id}`, { role: e.currentTarget.value }), "Role changed.")}
                    >
                      <option value="viewer">viewer</option>
                      <option value="admin">admin</option>
                    </select>
                  ) : (
                    m.role
                  )}
                </td>
                {props.admin && (
                  <td>
                    <button class="danger" onClick={() => change(() => api("DELETE", `${base}/members/${m.user.id}`), "Member removed.")}>
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {props.admin && (
          <AddMember
            users={users.filter((u) => !members.some((m) => m.user.id === u.id))}
            onAdd={(userId, role) => change(() => api("PUT", `${base}/members/${userId}`, { role }), "Member added.")}
          />
        )}
      </div>

      <AlertSettings base={base} admin={props.admin} change={change} version={version} />
    </section>
  );
}

function AddIngestKey(props: { onAdd: (body: { name: string; rate_limit_per_s?: number }) => void }) {
  const [name, setName] = useState("");
  const [rate, setRate] = useState("");
  return (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        props.onAdd({ name, ...(rate ? { rate_limit_per_s: Number(rate) } : {}) });
        setName("");
        setRate("");
      }}
    >
      <label>
        New key's name
        <input id="ingest-key-name" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
      </label>
      <label>
        Events per second (optional)
        <input type="number" min={1} value={rate} onInput={(e) => setRate(e.currentTarget.value)} />
      </label>
      <button type="submit" id="add-ingest-key">
        Add ingest key
      </button>
    </form>
  );
}

function AddSecretKey(props: { onAdd: (body: { name: string; role: string }) => void }) {
  const [name, setName] = useState("");
  const [role, setRole] = useState("viewer");
  return (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        props.onAdd({ name, role });
        setName("");
      }}
    >
      <label>
        New key's name
        <input id="secret-key-name" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
      </label>
      <label>
        Role
        <select value={role} onChange={(e) => setRole(e.currentTarget.value)}>
          <option value="viewer">viewer</option>
          <option value="admin">admin</option>
        </select>
      </label>
      <button type="submit" id="add-secret-key">
        Create secret key
      </button>
    </form>
  );
}

function AddMember(props: { users: UserEntry[]; onAdd: (userId: string, role: string) => void }) {
  const [userId, setUserId] = useState("");
  const [role, setRole] = useState("viewer");
  if (props.users.length === 0) return <p class="muted">Every user is a member.</p>;
  return (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        if (userId) props.onAdd(userId, role);
      }}
    >
      <label>
        User
        <select id="member-user" value={userId} onChange={(e) => setUserId(e.currentTarget.value)}>
          <option value="">Choose…</option>
          {props.users.map((u) => (
            <option key={u.id} value={u.id}>
              {u.email}
            </option>
          ))}
        </select>
      </label>
      <label>
        Role
        <select value={role} onChange={(e) => setRole(e.currentTarget.value)}>
          <option value="viewer">viewer</option>
          <option value="admin">admin</option>
        </select>
      </label>
      <button type="submit">Add member</button>
    </form>
  );
}
