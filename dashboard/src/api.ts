// The query API, from the dashboard served on the same origin: the session
// cookie goes along by itself; changes carry the session's CSRF token.

import type { components } from "../../sdk/core/src/openapi";

/** The query API's types, generated from its OpenAPI document (the one the
 * SDKs use; `npm run generate --prefix sdk`). */
export type Schemas = components["schemas"];
export type SessionView = Schemas["SessionView"];
export type Project = Schemas["ProjectView"];

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
