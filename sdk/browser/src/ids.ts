// Visitor and session ids. The visitor id lives in localStorage (or, with
// `persistence: "memory"`, only in this page); a session ends after 30
// minutes without an event, like the server's own sessions.

const VISITOR_KEY = "sightline_id";
const SESSION_KEY = "sightline_session";
export const SESSION_IDLE_MS = 30 * 60_000;

export function randomId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

/** localStorage, or nothing when it is unavailable (private modes, sandboxed frames). */
function storage(): Storage | undefined {
  try {
    return globalThis.localStorage ?? undefined;
  } catch {
    return undefined;
  }
}

export class Ids {
  private visitor: string | undefined;
  private session: { id: string; last: number } | undefined;

  constructor(private readonly persist: boolean) {}

  visitorId(): string {
    if (this.visitor) return this.visitor;
    const store = this.persist ? storage() : undefined;
    let id = store?.getItem(VISITOR_KEY) ?? undefined;
    if (!id) {
      id = randomId();
      try {
        store?.setItem(VISITOR_KEY, id);
      } catch {
        // Full or refused: this page keeps its id anyway.
      }
    }
    this.visitor = id;
    return id;
  }

  /** The session of an event at `now`: the current one, or a new one after 30 idle minutes. */
  sessionId(now: number): string {
    const store = this.persist ? storage() : undefined;
    if (!this.session && store) {
      try {
        const saved = JSON.parse(store.getItem(SESSION_KEY) ?? "null");
        if (saved && typeof saved.id === "string" && typeof saved.last === "number") this.session = saved;
      } catch {
        // Unreadable: a new session.
      }
    }
    if (!this.session || now - this.session.last > SESSION_IDLE_MS) {
      this.session = { id: randomId(), last: now };
    }
    this.session.last = now;
    try {
      store?.setItem(SESSION_KEY, JSON.stringify(this.session));
    } catch {
      // The session still holds for this page.
    }
    return this.session.id;
  }

  /** Forgets the visitor (opt-out). */
  clear(): void {
    const store = storage();
    try {
      store?.removeItem(VISITOR_KEY);
      store?.removeItem(SESSION_KEY);
    } catch {
      // Nothing to forget.
    }
    this.visitor = undefined;
    this.session = undefined;
  }
}
