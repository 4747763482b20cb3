// Controls several pages share.

import { useEffect, useState } from "preact/hooks";

import { api, type Schemas } from "./api";
import { RANGES, type RangeName } from "./query";

/** The time range a page shows. */
export function RangePicker(props: { value: RangeName; onChange: (range: RangeName) => void; id?: string }) {
  return (
    <label>
      Range
      <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value as RangeName)}>
        {RANGES.map(([name, label]) => (
          <option key={name} value={name}>
            {label}
          </option>
        ))}
      </select>
    </label>
  );
}

/**
 * The project's segments (saved filters): one applied on choice, and, for
 * admins, the page's filters saved as a new one. A page passes the filter
 * names it understands; a segment's other filters are named, not applied.
 */
export function SegmentBar(props: {
  projectId: string;
  admin: boolean;
  filters: Record<string, string | undefined>;
  applies: (name: string) => boolean;
  onApply: (filters: Record<string, string>) => void;
}) {
  const path = `/api/v1/projects/${encodeURIComponent(props.projectId)}/segments`;
  const [segments, setSegments] = useState<Schemas["SegmentView"][]>([]);
  const [name, setName] = useState("");
  const [ignored, setIgnored] = useState<string[]>([]);
  const load = () => api<Schemas["SegmentList"]>("GET", path).then((a) => setSegments(a.segments));
  useEffect(() => {
    void load();
    setIgnored([]);
  }, [path]);
  const active = Object.entries(props.filters).filter((e): e is [string, string] => e[1] !== undefined);
  const apply = (segment: Schemas["SegmentView"]) => {
    const entries = Object.entries(segment.filters);
    setIgnored(entries.filter(([k]) => !props.applies(k)).map(([k]) => k));
    props.onApply(Object.fromEntries(entries.filter(([k]) => props.applies(k))));
  };
  return (
    <>
      <label>
        Segment
        <select
          id="segment"
          value=""
          onChange={(e) => {
            const chosen = segments.find((seg) => seg.id === e.currentTarget.value);
            if (chosen) apply(chosen);
          }}
        >
          <option value="">Apply a segment…</option>
          {segments.map((seg) => (
            <option key={seg.id} value={seg.id}>
              {seg.name}
            </option>
          ))}
        </select>
      </label>
      {ignored.length > 0 && (
        <span class="muted" id="segment-ignored">
          Not applicable on this page: {ignored.join(", ")}
        </span>
      )}
      {props.admin && active.length > 0 && (
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            void api("POST", path, { name, filters: Object.fromEntries(active) }).then(() => {
              setName("");
              void load();
            });
          }}
        >
          <label>
            Save these filters as
            <input id="segment-name" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
          </label>
          <button type="submit" id="save-segment">
            Save segment
          </button>
        </form>
      )}
    </>
  );
}
