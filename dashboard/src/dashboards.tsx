// Dashboards: a project's named grids of widgets. Admins add widgets from
// the catalogue, drag them by their title bar, resize them from a corner or
// with the keyboard (each widget's move and size buttons), and remove them;
// every change is saved to the server at once, in reading order. Viewers see the grid fixed.
// The grid is gridstack's; Preact renders the widgets inside its items.

import { GridStack, type GridStackNode } from "gridstack";
import "gridstack/dist/gridstack.min.css";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";

import { api, type Schemas } from "./api";
import { RangePicker } from "./controls";
import { rangeOf, type RangeName } from "./query";
import { CATALOGUE, WidgetBody, viewKey, viewLabel, type Widget } from "./widgets";

type Dashboard = Schemas["DashboardView"];
const COLUMNS = 12;
const MAX_HEIGHT = 12;

/** Widgets in reading order: top to bottom, then left to right. The grid
 * lays them out in this order (gravity pulls each up past the ones after
 * it otherwise), and the keyboard reaches them in it. */
export function inReadingOrder(widgets: Widget[]): Widget[] {
  return [...widgets].sort((a, b) => a.y - b.y || a.x - b.x);
}

/** The widgets with the places gridstack reports, by id. */
export function placed(widgets: Widget[], nodes: Pick<GridStackNode, "id" | "x" | "y" | "w" | "h">[]): Widget[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  return inReadingOrder(
    widgets.map((w) => {
      const n = byId.get(w.id);
      return n ? { ...w, x: n.x ?? w.x, y: n.y ?? w.y, w: n.w ?? w.w, h: n.h ?? w.h } : w;
    }),
  );
}

/** A new widget of a view, below every other. */
export function added(widgets: Widget[], key: string): Widget[] {
  const entry = CATALOGUE.find((c) => viewKey(c.view) === key);
  if (!entry) return widgets;
  const bottom = widgets.reduce((low, w) => Math.max(low, w.y + w.h), 0);
  const used = new Set(widgets.map((w) => w.id));
  let n = widgets.length + 1;
  while (used.has(`w${n}`)) n += 1;
  return [...widgets, { id: `w${n}`, x: 0, y: bottom, w: entry.w, h: entry.h, view: entry.view }];
}

/** A widget moved or resized by a keyboard step, kept inside the grid. */
export function stepped(w: Widget, step: "left" | "right" | "up" | "down" | "wider" | "narrower" | "taller" | "shorter"): Widget {
  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
  switch (step) {
    case "left":
      return { ...w, x: clamp(w.x - 1, 0, COLUMNS - w.w) };
    case "right":
      return { ...w, x: clamp(w.x + 1, 0, COLUMNS - w.w) };
    case "up":
      return { ...w, y: Math.max(0, w.y - 1) };
    case "down":
      return { ...w, y: w.y + 1 };
    case "wider":
      return { ...w, w: clamp(w.w + 1, 1, COLUMNS - w.x) };
    case "narrower":
      return { ...w, w: clamp(w.w - 1, 1, COLUMNS) };
    case "taller":
      return { ...w, h: clamp(w.h + 1, 1, MAX_HEIGHT) };
    case "shorter":
      return { ...w, h: clamp(w.h - 1, 1, MAX_HEIGHT) };
  }
}

// Each step's glyph (symbols only, so the button's name is its label) and label.
const STEPS = [
  ["left", "←", "Move left"],
  ["right", "→", "Move right"],
  ["up", "↑", "Move up"],
  ["down", "↓", "Move down"],
  ["narrower", "⇤", "Narrower"],
  ["wider", "⇥", "Wider"],
  ["shorter", "⤒", "Shorter"],
  ["taller", "⤓", "Taller"],
] as const;

/** Whether two layouts put every widget in the same place. */
function samePlaces(a: Widget[], b: Widget[]): boolean {
  return a.length === b.length && a.every((w, i) => w.id === b[i].id && w.x === b[i].x && w.y === b[i].y && w.w === b[i].w && w.h === b[i].h);
}

type GridItem = HTMLElement & { gridstackNode?: GridStackNode };

function Grid(props: { board: Dashboard; base: string; admin: boolean; rangeName: RangeName; tick: number; onChange: (widgets: Widget[]) => void }) {
  const { board, admin } = props;
  const gridEl = useRef<HTMLDivElement>(null);
  const grid = useRef<GridStack | null>(null);
  // gridstack's handlers are set once; they read the latest render's values.
  const latest = useRef(props);
  latest.current = props;
  const range = rangeOf(props.rangeName, Date.now());
  const items = () => Array.from(gridEl.current!.children) as GridItem[];
  const widgetOf = (el: Element) => latest.current.board.widgets.find((w) => w.id === el.getAttribute("gs-id"));

  useLayoutEffect(() => {
    // The places are written before init, so gridstack starts from them.
    for (const el of items()) {
      const w = widgetOf(el);
      if (w) for (const [name, value] of [["x", w.x], ["y", w.y], ["w", w.w], ["h", w.h], ["max-h", MAX_HEIGHT]] as const) el.setAttribute(`gs-${name}`, String(value));
    }
    const g = GridStack.init(
      { column: COLUMNS, cellHeight: 60, margin: 6, mode: "top", staticGrid: !admin, handle: ".widget-head h3", maxRow: 0 },
      gridEl.current!,
    )!;
    g.on("change", (_event, nodes) => {
      const { board, admin, onChange } = latest.current;
      const next = placed(board.widgets, nodes);
      if (admin && !samePlaces(next, board.widgets)) onChange(next);
    });
    grid.current = g;
    return () => {
      g.destroy(false);
      grid.current = null;
    };
  }, [board.id, admin]);

  // Items Preact added become gridstack's; places changed here move them.
  useLayoutEffect(() => {
    const g = grid.current!;
    g.batchUpdate();
    for (const el of items()) {
      const w = widgetOf(el);
      if (!w) continue;
      const node = el.gridstackNode;
      if (!node) g.makeWidget(el, { id: w.id, x: w.x, y: w.y, w: w.w, h: w.h, maxH: MAX_HEIGHT });
      else if (node.x !== w.x || node.y !== w.y || node.w !== w.w || node.h !== w.h) g.update(el, { x: w.x, y: w.y, w: w.w, h: w.h });
    }
    g.batchUpdate(false);
  });

  const remove = (id: string) => {
    const el = gridEl.current!.querySelector(`[gs-id="${CSS.escape(id)}"]`);
    if (el) grid.current?.removeWidget(el as HTMLElement, false, false);
    props.onChange(board.widgets.filter((w) => w.id !== id));
  };

  return (
    <div class="grid-stack" ref={gridEl} id="grid">
      {board.widgets.map((w) => (
        <div class="grid-stack-item" key={w.id} gs-id={w.id} data-widget={viewKey(w.view)}>
          <section class="grid-stack-item-content card widget" aria-label={w.title ?? viewLabel(w.view)}>
            <div class="widget-head">
              <h3>{w.title ?? viewLabel(w.view)}</h3>
              {admin && (
                <div class="widget-tools">
                  {STEPS.map(([step, glyph, label]) => (
                    <button key={step} class="tool" aria-label={`${label}: ${w.title ?? viewLabel(w.view)}`} title={label} onClick={() => props.onChange(board.widgets.map((x) => (x.id === w.id ? stepped(x, step) : x)))}>
                      {glyph}
                    </button>
                  ))}
                  <button class="tool remove" aria-label={`Remove ${w.title ?? viewLabel(w.view)}`} title="Remove" onClick={() => remove(w.id)}>
                    ×
                  </button>
                </div>
              )}
            </div>
            <div class="widget-body" tabIndex={w.view.kind === "table" ? 0 : undefined}>
              <WidgetBody base={props.base} view={w.view} range={range} tick={props.tick} />
            </div>
          </section>
        </div>
      ))}
    </div>
  );
}

export function Dashboards(props: { projectId: string; admin: boolean; dashboardId: string | undefined; open: (id: string) => void }) {
  const base = `/api/v1/projects/${encodeURIComponent(props.projectId)}`;
  const [boards, setBoards] = useState<Dashboard[] | null>(null);
  const [rangeName, setRangeName] = useState<RangeName>("today");
  const [newName, setNewName] = useState("");
  const [choice, setChoice] = useState(viewKey(CATALOGUE[0].view));
  const [status, setStatus] = useState("");
  const [tick, setTick] = useState(0);
  const saving = useRef<Promise<unknown>>(Promise.resolve());

  useEffect(() => {
    setBoards(null);
    api<Schemas["DashboardList"]>("GET", `${base}/dashboards`).then((a) => setBoards(a.dashboards));
  }, [base]);

  // Widgets are read again when the live feed says something changed.
  useEffect(() => {
    const feed = new EventSource(`${base}/live`);
    let pending: ReturnType<typeof setTimeout> | undefined;
    const changed = () => {
      clearTimeout(pending);
      pending = setTimeout(() => setTick((t) => t + 1), 100);
    };
    for (const kind of ["pageviews", "errors", "events", "lagged"]) feed.addEventListener(kind, changed);
    return () => {
      feed.close();
      clearTimeout(pending);
    };
  }, [base]);

  const board = boards?.find((b) => b.id === props.dashboardId) ?? boards?.[0];

  /** Shows the change at once and saves it; saves go one after another. */
  const change = (widgets: Widget[]) => {
    if (!board) return;
    widgets = inReadingOrder(widgets);
    const next = { ...board, widgets };
    setBoards((all) => all && all.map((b) => (b.id === board.id ? next : b)));
    setStatus("Saving…");
    saving.current = saving.current
      .then(() => api<Dashboard>("PUT", `${base}/dashboards/${board.id}`, { name: board.name, widgets }))
      .then(
        () => setStatus("Saved."),
        (e: unknown) => setStatus(`Not saved: ${e instanceof Error ? e.message : String(e)}`),
      );
  };

  const create = async (e: Event) => {
    e.preventDefault();
    const made = await api<Dashboard>("POST", `${base}/dashboards`, { name: newName, widgets: [] });
    setBoards((all) => [...(all ?? []), made]);
    setNewName("");
    props.open(made.id);
  };

  const removeBoard = async () => {
    if (!board || !confirm(`Delete the dashboard “${board.name}”?`)) return;
    await api("DELETE", `${base}/dashboards/${board.id}`);
    setBoards((all) => all && all.filter((b) => b.id !== board.id));
    props.open("");
  };

  if (boards === null) return <p class="muted">Loading…</p>;
  return (
    <section>
      <div class="toolbar">
        <label>
          Dashboard
          <select id="dashboard" value={board?.id ?? ""} onChange={(e) => props.open(e.currentTarget.value)}>
            {boards.length === 0 && <option value="">No dashboard yet</option>}
            {boards.map((b) => (
              <option key={b.id} value={b.id}>
                {b.name}
              </option>
            ))}
          </select>
        </label>
        <RangePicker id="dashboard-range" value={rangeName} onChange={setRangeName} />
        {props.admin && board && (
          <form
            class="inline"
            onSubmit={(e) => {
              e.preventDefault();
              change(added(board.widgets, choice));
            }}
          >
            <label>
              Widget
              <select id="widget-choice" value={choice} onChange={(e) => setChoice(e.currentTarget.value)}>
                {(["number", "chart", "table"] as const).map((kind) => (
                  <optgroup key={kind} label={{ number: "Numbers", chart: "Charts", table: "Tables" }[kind]}>
                    {CATALOGUE.filter((c) => c.view.kind === kind).map((c) => (
                      <option key={viewKey(c.view)} value={viewKey(c.view)}>
                        {c.label}
                      </option>
                    ))}
                  </optgroup>
                ))}
              </select>
            </label>
            <button type="submit" id="add-widget">
              Add widget
            </button>
          </form>
        )}
        {props.admin && (
          <form class="inline" onSubmit={create}>
            <label>
              New dashboard
              <input id="dashboard-name" value={newName} required maxLength={100} onInput={(e) => setNewName(e.currentTarget.value)} />
            </label>
            <button type="submit" id="create-dashboard">
              Create
            </button>
          </form>
        )}
        {props.admin && board && (
          <button id="delete-dashboard" class="danger" onClick={removeBoard}>
            Delete dashboard
          </button>
        )}
        <span class="muted" id="dashboard-status" role="status">
          {status}
        </span>
      </div>
      {board ? (
        <Grid board={board} base={base} admin={props.admin} rangeName={rangeName} tick={tick} onChange={change} />
      ) : (
        <p class="muted">{props.admin ? "Create a dashboard to add widgets to it." : "No dashboard yet."}</p>
      )}
    </section>
  );
}
