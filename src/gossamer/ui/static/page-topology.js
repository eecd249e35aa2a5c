// Topology: services, the route edges the config declares and the calls the sidecars
// measured (last 30 s), as an SVG laid out in layers (callers left, backends right). Measured
// edges are labelled with rps and success rate and coloured by health (said in the list too).
import { h, svg } from "./dom.js";
import { formatPercent, formatRate, healthTone } from "./metrics.js";
import { topology } from "./model.js";

export const title = "Topology";

const NODE_W = 160;
const NODE_H = 36;
const COL_GAP = 130;
const ROW_GAP = 34;
const TOP = 34; // room for a self-loop (a route splitting a service among its own subsets)

/** Pure layout: layer = longest path from a source (cycles cut), rows in name order. */
export function layout(graph) {
  const layer = new Map(graph.nodes.map((n) => [n, 0]));
  // Bellman-Ford style relaxation, bounded by the node count so cycles terminate.
  for (let pass = 0; pass < graph.nodes.length; pass++) {
    let moved = false;
    for (const e of graph.edges) {
      if (e.from === e.to) continue;
      const want = layer.get(e.from) + 1;
      if (want > layer.get(e.to) && want < graph.nodes.length) {
        layer.set(e.to, want);
        moved = true;
      }
    }
    if (!moved) break;
  }
  const columns = new Map();
  for (const n of graph.nodes) {
    const l = layer.get(n);
    if (!columns.has(l)) columns.set(l, []);
    columns.get(l).push(n);
  }
  const positions = new Map();
  let rows = 0;
  for (const [l, names] of columns) {
    names.forEach((n, i) => positions.set(n, { x: 10 + l * (NODE_W + COL_GAP), y: TOP + i * (NODE_H + ROW_GAP) }));
    rows = Math.max(rows, names.length);
  }
  const width = 20 + Math.max(1, columns.size) * (NODE_W + COL_GAP) - COL_GAP;
  const height = TOP + 10 + Math.max(1, rows) * (NODE_H + ROW_GAP) - ROW_GAP;
  return { positions, width, height };
}

/** The config's graph plus measured caller -> callee edges (callers outside the mesh left out). */
export function withTraffic(graph, metricEdges) {
  const nodes = new Set(graph.nodes);
  const edges = new Map(graph.edges.map((e) => [`${e.from}->${e.to}`, { ...e, routes: new Set(e.routes) }]));
  for (const m of metricEdges) {
    if (!m.src || !m.dst) continue;
    nodes.add(m.src);
    nodes.add(m.dst);
    const id = `${m.src}->${m.dst}`;
    const edge = edges.get(id) || { from: m.src, to: m.dst, routes: new Set() };
    edge.traffic = m;
    edges.set(id, edge);
  }
  return { nodes: [...nodes].sort(), edges: [...edges.values()] };
}

const trafficText = (t) => `${formatRate(t.rps)} rps · ${formatPercent(t.successRate)}`;

function edgeWords(e) {
  const via = e.routes.size ? ` via ${[...e.routes].join(", ")}` : "";
  const live = e.traffic
    ? `: ${trafficText(e.traffic)} success (${healthTone(e.traffic.successRate, e.traffic.requests)})${e.traffic.mtls ? ", mTLS" : ", not all mTLS"}`
    : ": no traffic measured";
  return `${e.from} → ${e.to}${via}${live}`;
}

export function render(ctx) {
  const graph = withTraffic(topology(ctx.model), ctx.metrics.edges);
  const { positions, width, height } = layout(graph);
  const defs = svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 8, markerHeight: 8, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" })));
  const edges = graph.edges.map((e) => {
    const a = positions.get(e.from);
    const b = positions.get(e.to);
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const self = e.from === e.to;
    const d = self
      ? `M${a.x + NODE_W - 30},${a.y} C${a.x + NODE_W - 30},${a.y - 30} ${a.x + 30},${a.y - 30} ${a.x + 30},${a.y}`
      : `M${x1},${y1} C${x1 + COL_GAP / 2},${y1} ${x2 - COL_GAP / 2},${y2} ${x2},${y2}`;
    const routeLabel = e.routes.size === 1 ? [...e.routes][0].split("/")[1] : `${e.routes.size} routes`;
    const label = e.traffic ? trafficText(e.traffic) : routeLabel;
    const tone = e.traffic ? healthTone(e.traffic.successRate, e.traffic.requests) : "config";
    const [lx, ly] = self ? [a.x + NODE_W / 2, a.y - 26] : [(x1 + x2) / 2, (y1 + y2) / 2 - 5];
    return svg("g", { class: `edge ${tone}`, "data-edge": `${e.from}->${e.to}` },
      svg("title", {}, edgeWords(e)),
      svg("path", { d, "marker-end": "url(#arrow)" }),
      svg("text", { x: lx, y: ly, "text-anchor": "middle" }, label.length > 22 ? `${label.slice(0, 21)}…` : label));
  });
  const nodes = graph.nodes.map((n) => {
    const p = positions.get(n);
    const [ns, name] = n.split("/");
    return svg("a", { href: `#/service/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`, class: "node", "aria-label": `service ${n}` },
      svg("rect", { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6 }),
      svg("text", { x: p.x + NODE_W / 2, y: p.y + NODE_H / 2 + 5, "text-anchor": "middle" }, n.length > 22 ? `${n.slice(0, 21)}…` : n));
  });
  const picture = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", id: "topology",
    "aria-label": `${graph.nodes.length} services and ${graph.edges.length} route edges (listed below)` }, defs, ...edges, ...nodes);
  const list = h("ul.sr-list", { id: "edge-list" }, graph.edges.map((e) => h("li", { dataset: { edge: `${e.from}->${e.to}` } }, edgeWords(e))));
  return h("section", {}, h("h1", {}, "Topology"),
    h("p.summary", {}, "Edges follow HTTPRoutes (grey) and the calls sidecars measured over the last 30 s: ",
      "green at 99% success or more, amber below, red below 95%."),
    h("div.scroll.graph", {}, picture), h("h2", {}, "Edges"), list);
}
