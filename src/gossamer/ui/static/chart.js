// A small SVG line chart of our own: time on x, one or more series, optional horizontal
// threshold lines. `scale` is pure (tested); `lineChart` builds the SVG.
import { h, svg } from "./dom.js";

const W = 560;
const H = 180;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

/** Domain of the points and thresholds, padded; [0, 1] when there is nothing. `ceiling`
 * caps the top (a share never goes past 100%). */
export function yDomain(series, thresholds = [], floorZero = true, ceiling = null) {
  const values = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v != null && Number.isFinite(v));
  values.push(...thresholds.map((t) => t.value).filter(Number.isFinite));
  if (!values.length) return [0, 1];
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (floorZero) lo = Math.min(0, lo);
  if (ceiling != null) {
    hi = ceiling;
    lo = Math.min(lo, ceiling * 0.9); // a flat 100% sits at the top of a readable band
    return [lo, hi];
  }
  if (hi === lo) hi = lo + (Math.abs(lo) || 1);
  return [lo, hi + (hi - lo) * 0.08];
}

/** Maps a value from [d0, d1] onto [r0, r1]. */
export const scale = ([d0, d1], [r0, r1]) => (v) => r0 + ((v - d0) / (d1 - d0 || 1)) * (r1 - r0);

/** The path of one series; gaps (null values) break the line. */
export function pathOf(points, x, y) {
  let d = "";
  let pen = false;
  for (const [t, v] of points) {
    if (v == null || !Number.isFinite(v)) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  }
  return d;
}

/**
 * lineChart({title, series: [{name, points: [[tMs, value]], tone}], thresholds: [{value, label}],
 *            format: (v) => text, span: [t0, t1], floorZero, ceiling})
 * The chart is an image with a text alternative; the latest values are also said in words.
 */
export function lineChart({ title, series, thresholds = [], format = String, span, floorZero = true, ceiling = null, id }) {
  const all = series.flatMap((s) => s.points.map((p) => p[0]));
  const [t0, t1] = span || [Math.min(...all, Date.now() - 60_000), Math.max(...all, Date.now())];
  const x = scale([t0, t1], [PAD.left, W - PAD.right]);
  const domain = yDomain(series, thresholds, floorZero, ceiling);
  const y = scale(domain, [H - PAD.bottom, PAD.top]);
  const ticks = [domain[0], (domain[0] + domain[1]) / 2, domain[1]];
  const parts = [
    svg("rect", { x: PAD.left, y: PAD.top, width: W - PAD.left - PAD.right, height: H - PAD.top - PAD.bottom, class: "plot" }),
    ...ticks.map((v) =>
      svg("g", { class: "tick" },
        svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
        svg("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end" }, format(v))),
    ),
    svg("text", { x: PAD.left, y: H - 8, class: "axis" }, `${Math.round((t1 - t0) / 1000)} s ago`),
    svg("text", { x: W - PAD.right, y: H - 8, class: "axis", "text-anchor": "end" }, "now"),
    ...thresholds.map((t) =>
      svg("g", { class: "threshold" },
        svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(t.value), y2: y(t.value) }),
        svg("text", { x: W - PAD.right - 4, y: y(t.value) - 4, "text-anchor": "end" }, t.label)),
    ),
    ...series.map((s) => svg("path", { d: pathOf(s.points, x, y), class: `series ${s.tone || ""}` })),
  ];
  const latest = series.map((s) => {
    const last = [...s.points].reverse().find((p) => p[1] != null);
    return `${s.name} ${last ? format(last[1]) : "—"}`;
  });
  const label = `${title}: ${latest.join(", ") || "no data yet"}`;
  return h(
    "figure.chart",
    { id },
    h("figcaption", {}, title, " ", h("span.legend", {}, series.map((s) => h(`span.key.${s.tone || "a"}`, {}, s.name)))),
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, preserveAspectRatio: "none" }, ...parts),
    h("p.latest", {}, latest.join(" · ") || "No data yet."),
  );
}
