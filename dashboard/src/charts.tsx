// The one line chart every page uses: uPlot, in the theme's colours, as
// wide as its box and either as tall as it or a fixed height, following the
// box's size; new data redraws it without rebuilding it.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export type Series = [number[], (number | null)[]];

export function LineChart(props: { data: Series; label: string; color?: string; height?: number; id?: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const color = props.color ?? "#3b82f6";
  useEffect(() => {
    const el = box.current!;
    const size = () => ({ width: Math.max(100, el.clientWidth), height: props.height ?? Math.max(80, el.clientHeight) });
    // Axis text in the theme's muted colour, which has the contrast it needs.
    const text = getComputedStyle(el).getPropertyValue("--muted").trim() || "#52525b";
    const axis = { stroke: text, grid: { stroke: "rgba(128,128,128,0.2)" }, ticks: { stroke: "rgba(128,128,128,0.3)" } };
    plot.current = new uPlot(
      {
        ...size(),
        series: [{}, { label: props.label, stroke: color, fill: `${color}26`, spanGaps: false }],
        axes: [axis, { ...axis, size: 50 }],
        legend: { show: false },
      },
      props.data,
      el,
    );
    const resized = new ResizeObserver(() => plot.current?.setSize(size()));
    resized.observe(el);
    return () => {
      resized.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [props.label, color, props.height]);
  useEffect(() => plot.current?.setData(props.data), [props.data]);
  const values = props.data[1].map((v) => (v === null ? "none" : String(Math.round(v * 1000) / 1000)));
  return <div class="chart-box" id={props.id} ref={box} role="img" aria-label={`${props.label}: ${values.join(", ")}`} />;
}
