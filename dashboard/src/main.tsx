// Sightline's dashboard: login, then a project's overview with a live
// chart. Event data is always rendered as text (Preact escapes it).

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";

import { ApiError, api, setCsrf, type Project, type SessionView } from "./api";
import { Dashboards } from "./dashboards";
import { ErrorGroup, ErrorList } from "./errors";
import { Events } from "./events";
import { Overview } from "./overview";
import { Performance } from "./performance";
import { Settings } from "./settings";
import "./style.css";

function Login(props: { onSession: (s: SessionView) => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const submit = async (e: Event) => {
    e.preventDefault();
    setError("");
    try {
      props.onSession(await api<SessionView>("POST", "/api/v1/auth/login", { email, password }));
    } catch (err) {
      setError(err instanceof ApiError && err.status === 429 ? "Too many attempts; try again later." : "Wrong email or password.");
    }
  };
  return (
    <form class="card login" onSubmit={submit}>
      <h1>Sightline</h1>
      <label>
        Email
        <input id="email" type="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
      </label>
      <label>
        Password
        <input id="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
      </label>
      {error && <p role="alert" class="error">{error}</p>}
      <button type="submit">Log in</button>
    </form>
  );
}

function NewPassword(props: { onDone: () => void }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [error, setError] = useState("");
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await api("POST", "/api/v1/auth/password", { current_password: current, new_password: next });
      props.onDone();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <form class="card login" onSubmit={submit}>
      <h1>Set your password</h1>
      <label>
        One-time password
        <input id="current" type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
      </label>
      <label>
        New password (12 characters or more)
        <input id="new" type="password" autocomplete="new-password" minLength={12} required value={next} onInput={(e) => setNext(e.currentTarget.value)} />
      </label>
      {error && <p role="alert" class="error">{error}</p>}
      <button type="submit">Save</button>
    </form>
  );
}

type Theme = "system" | "light" | "dark";
const THEME_KEY = "sightline_theme";

function applyTheme(theme: Theme): void {
  if (theme === "system") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.setAttribute("data-theme", theme);
}

const savedTheme = (): Theme => (localStorage.getItem(THEME_KEY) as Theme | null) ?? "system";

/** Light, dark, or as the system says; remembered on this device. */
function ThemeSwitch() {
  const [theme, setTheme] = useState<Theme>(savedTheme);
  const choose = (next: Theme) => {
    applyTheme(next);
    localStorage.setItem(THEME_KEY, next);
    setTheme(next);
  };
  return (
    <label class="switcher">
      Theme
      <select id="theme" value={theme} onChange={(e) => choose(e.currentTarget.value as Theme)}>
        <option value="system">System</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </label>
  );
}

function App() {
  const [session, setSession] = useState<SessionView | null | undefined>(undefined);
  const [projects, setProjects] = useState<Project[]>([]);
  const [projectId, setProjectId] = useState("");
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const moved = () => setPath(location.pathname);
    addEventListener("popstate", moved);
    return () => removeEventListener("popstate", moved);
  }, []);
  const navigate = (to: string) => {
    history.pushState({}, "", to);
    setPath(to);
  };

  const adopt = (s: SessionView | null) => {
    if (s) setCsrf(s.csrf_token);
    setSession(s);
  };
  useEffect(() => {
    api<SessionView>("GET", "/api/v1/auth/session").then(adopt, () => adopt(null));
  }, []);
  const loadProjects = () =>
    api<{ projects: Project[] }>("GET", "/api/v1/projects").then((answer) => {
      setProjects(answer.projects);
      setProjectId((id) => id || answer.projects[0]?.id || "");
    });
  useEffect(() => {
    if (session && !session.user.must_change_password) void loadProjects();
  }, [session]);

  if (session === undefined) return <p class="muted">Loading…</p>;
  if (session === null) return <Login onSession={adopt} />;
  if (session.user.must_change_password) {
    return <NewPassword onDone={() => api<SessionView>("GET", "/api/v1/auth/session").then(adopt)} />;
  }
  const logout = async () => {
    await api("POST", "/api/v1/auth/logout");
    adopt(null);
  };
  return (
    <div class="shell">
      <header>
        <strong>Sightline</strong>
        <nav>
          <button class="link" aria-current={path === "/" ? "page" : undefined} onClick={() => navigate("/")}>
            Overview
          </button>
          <button class="link" id="nav-dashboards" aria-current={path.startsWith("/dashboards") ? "page" : undefined} onClick={() => navigate("/dashboards")}>
            Dashboards
          </button>
          <button class="link" id="nav-events" aria-current={path === "/events" ? "page" : undefined} onClick={() => navigate("/events")}>
            Events
          </button>
          <button class="link" id="nav-errors" aria-current={path.startsWith("/errors") ? "page" : undefined} onClick={() => navigate("/errors")}>
            Errors
          </button>
          <button class="link" id="nav-settings" aria-current={path === "/settings" ? "page" : undefined} onClick={() => navigate("/settings")}>
            Settings
          </button>
          <button class="link" id="nav-performance" aria-current={path === "/performance" ? "page" : undefined} onClick={() => navigate("/performance")}>
            Performance
          </button>
        </nav>
        <label class="switcher">
          Project
          <select id="project" value={projectId} onChange={(e) => setProjectId(e.currentTarget.value)}>
            {projects.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <ThemeSwitch />
        <span class="muted">{session.user.email}</span>
        <button onClick={logout}>Log out</button>
      </header>
      <main>
        {!projectId ? (
          <p class="muted">No project yet.</p>
        ) : path === "/settings" ? (
          <Settings projectId={projectId} admin={isAdmin(session, projectId)} onRenamed={loadProjects} />
        ) : (
          page(path, projectId, navigate, isAdmin(session, projectId))
        )}
      </main>
    </div>
  );
}

/** Whether the user administers the project (owners administer all). */
function isAdmin(session: SessionView, projectId: string): boolean {
  return session.user.is_owner || session.projects.some((p) => p.project_id === projectId && p.role === "admin");
}

/** The page of a path: `/`, `/dashboards[/<id>]`, `/events`, `/errors`, `/errors/<fingerprint>`, `/performance`. */
function page(path: string, projectId: string, navigate: (to: string) => void, admin: boolean) {
  const board = path.match(/^\/dashboards(?:\/([^/]+))?$/);
  if (board) {
    const open = (id: string) => navigate(id ? `/dashboards/${encodeURIComponent(id)}` : "/dashboards");
    return <Dashboards projectId={projectId} admin={admin} dashboardId={board[1] && decodeURIComponent(board[1])} open={open} />;
  }
  const group = path.match(/^\/errors\/([^/]+)$/);
  if (group) {
    return <ErrorGroup projectId={projectId} fingerprint={decodeURIComponent(group[1])} back={() => navigate("/errors")} />;
  }
  if (path === "/performance") return <Performance projectId={projectId} />;
  if (path === "/events") return <Events projectId={projectId} admin={admin} />;
  if (path === "/errors") {
    return <ErrorList projectId={projectId} open={(fp) => navigate(`/errors/${encodeURIComponent(fp)}`)} />;
  }
  return <Overview projectId={projectId} admin={admin} />;
}

// Before the first paint, so a saved theme never flashes the other one.
applyTheme(savedTheme());
render(<App />, document.getElementById("app")!);
