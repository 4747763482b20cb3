// Controls several pages share.

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
