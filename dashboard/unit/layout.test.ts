import { describe, expect, it } from "vitest";

import { added, inReadingOrder, placed, stepped } from "../src/dashboards";
import type { Widget } from "../src/widgets";
import { change, previous, rangeOf } from "../src/query";

const number = (id: string, x: number, y: number, w = 3, h = 2): Widget => ({ id, x, y, w, h, view: { kind: "number", metric: "visitors" } });

describe("dashboard layout", () => {
  it("takes gridstack's places by id and keeps widgets in reading order", () => {
    const widgets = [number("a", 0, 0), number("b", 3, 0), number("c", 0, 2)];
    const moved = placed(widgets, [
      { id: "c", x: 0, y: 0, w: 4, h: 2 },
      { id: "a", x: 0, y: 2 },
    ]);
    expect(moved.map((w) => [w.id, w.x, w.y, w.w])).toEqual([
      ["c", 0, 0, 4],
      ["b", 3, 0, 3],
      ["a", 0, 2, 3],
    ]);
    expect(inReadingOrder([number("z", 6, 1), number("y", 0, 1), number("x", 9, 0)]).map((w) => w.id)).toEqual(["x", "y", "z"]);
  });

  it("adds a widget of the chosen view below every other, with an unused id", () => {
    const widgets = [number("w1", 0, 0), number("w3", 0, 2, 6, 5)];
    const next = added(widgets, "table:referrer");
    expect(next).toHaveLength(3);
    expect(next[2]).toMatchObject({ id: "w4", x: 0, y: 7, view: { kind: "table", table: "referrer" } });
    expect(added(widgets, "table:nothing")).toBe(widgets);
    expect(added([], "chart:live_pageviews")[0]).toMatchObject({ id: "w1", y: 0, w: 6, h: 4 });
  });

  it("moves and resizes by keyboard steps without leaving the grid", () => {
    expect(stepped(number("a", 0, 0), "left").x).toBe(0);
    expect(stepped(number("a", 9, 0), "right").x).toBe(9);
    expect(stepped(number("a", 8, 0), "right").x).toBe(9);
    expect(stepped(number("a", 9, 0), "wider").w).toBe(3);
    expect(stepped(number("a", 0, 0, 1), "narrower").w).toBe(1);
    expect(stepped(number("a", 0, 0, 3, 12), "taller").h).toBe(12);
    expect(stepped(number("a", 0, 0, 3, 1), "shorter").h).toBe(1);
    expect(stepped(number("a", 0, 0), "up").y).toBe(0);
    expect(stepped(number("a", 0, 4), "down").y).toBe(5);
  });
});

describe("ranges", () => {
  it("compares with the period of the same length just before", () => {
    const now = Date.UTC(2026, 10, 26, 12);
    const range = rangeOf("24h", now);
    expect(range.to - range.from).toBe(86_400_001);
    expect(previous(range)).toEqual({ from: range.from - 86_400_001, to: range.from, interval: "hour" });
    expect(rangeOf("30d", now).interval).toBe("day");
  });

  it("says how a number changed", () => {
    expect([change(0, 0), change(5, 0), change(110, 100), change(50, 100), change(100, 100)]).toEqual(["", "new", "+10%", "−50%", "±0%"]);
  });
});
