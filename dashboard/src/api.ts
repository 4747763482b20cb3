// The query API, from the dashboard served on the same origin: the session
// cookie goes along by itself; changes carry the session's CSRF token.

export interface SessionView {
  user: { id: string; email: string; name: string; is_owner: boolean; must_change_password: boolean };
  projects: { project_id: string; role: "viewer" | "admin" }[];
  csrf_token: string;
}

export interface Project {
  id: string;
  name: string;
  ingest_key: string;
  allowed_origins: string[];
  created_at: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrf = "";

export function setCsrf(token: string): void {
  csrf = token;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = answer?.error ?? {};
    throw new ApiError(response.status, error.code ?? "error", error.message ?? response.statusText);
  }
  return answer as T;
}
