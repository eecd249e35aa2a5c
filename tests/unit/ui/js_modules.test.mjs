// Unit tests of the dashboard's pure modules (node --test): weights, field lines, the model.
import assert from "node:assert/strict";
import { test } from "node:test";
import { dump } from "../../../src/gossamer/ui/static/js-yaml.mjs";
import { lineOfField, parseFieldPath } from "../../../src/gossamer/ui/static/locate.js";
import { MeshModel, proxyStaleness, serviceSummaries, topology } from "../../../src/gossamer/ui/static/model.js";
import { shares, weightsDiff, weightsProblem, withWeights } from "../../../src/gossamer/ui/static/weights.js";

const route = (weights, rv = "7") => ({
  kind: "HTTPRoute",
  metadata: { name: "r", namespace: "default", resourceVersion: rv },
  spec: { parentRefs: [{ name: "reviews" }], rules: [{ backendRefs: weights.map((w, i) => ({ name: "reviews", labels: { version: `v${i + 1}` }, weight: w })) }] },
  status: { warnings: [] },
});

test("shares are percentages of the total, with zeros when all are zero", () => {
  assert.deepEqual(shares([90, 10]), [90, 10]);
  assert.deepEqual(shares([1, 2]), [33.3, 66.7]);
  assert.deepEqual(shares([0, 0]), [0, 0]);
});

test("weightsProblem refuses negatives, fractions, NaN, too large, all zero", () => {
  assert.equal(weightsProblem([1, 0]), null);
  assert.match(weightsProblem([-1, 2]), /backend 1/);
  assert.match(weightsProblem([1, 1.5]), /backend 2/);
  assert.match(weightsProblem([Number.NaN]), /whole number/);
  assert.match(weightsProblem([1_000_001]), /0 to 1000000/);
  assert.match(weightsProblem([0, 0]), /positive/);
});

test("weightsDiff lists only the changed backends with shares before and after", () => {
  const diff = weightsDiff(route([90, 10]), 0, [90, 50]);
  assert.deepEqual(diff, [{ index: 1, label: "reviews {version=v2}", from: 10, to: 50, fromShare: 10, toShare: 35.7 }]);
  assert.deepEqual(weightsDiff(route([1, 1]), 0, [1, 1]), []);
});

test("withWeights keeps resourceVersion, drops status, leaves the original alone", () => {
  const original = route([90, 10]);
  const edited = withWeights(original, 0, [50, 50]);
  assert.equal(edited.metadata.resourceVersion, "7");
  assert.equal(edited.status, undefined);
  assert.deepEqual(edited.spec.rules[0].backendRefs.map((b) => b.weight), [50, 50]);
  assert.deepEqual(original.spec.rules[0].backendRefs.map((b) => b.weight), [90, 10]);
});

test("parseFieldPath splits names and indexes", () => {
  assert.deepEqual(parseFieldPath("spec.rules[0].backendRefs[12].weight"), ["spec", "rules", 0, "backendRefs", 12, "weight"]);
  assert.deepEqual(parseFieldPath("metadata.name"), ["metadata", "name"]);
});

test("lineOfField finds fields in the emitter's YAML", () => {
  const doc = route([1, -1]);
  const text = dump({ apiVersion: "gossamer.dev/v1", kind: doc.kind, metadata: { name: "r" }, spec: doc.spec });
  const lines = text.split("\n");
  const at = (path) => lines[lineOfField(text, path) - 1].trim();
  assert.equal(at("spec.rules[0].backendRefs[1].weight"), "weight: -1");
  assert.equal(at("spec.rules[0].backendRefs[0].weight"), "weight: 1");
  assert.equal(at("spec.parentRefs[0].name"), "- name: reviews");
  assert.equal(at("metadata.name"), "name: r");
  assert.equal(at("spec.rules[0].backendRefs[1].nothing"), "- name: reviews"); // deepest found
});

test("lineOfField finds fields in hand-written YAML with unindented sequences", () => {
  const text = ["kind: HTTPRoute", "spec:", "  rules:", "  - backendRefs:", "    - name: a", "      weight: 2", "    - {name: b}", "  - backendRefs:", "    - name: c", "      weight: -3"].join("\n");
  assert.equal(lineOfField(text, "spec.rules[1].backendRefs[0].weight"), 10);
  assert.equal(lineOfField(text, "spec.rules[0].backendRefs[0].weight"), 6);
  assert.equal(lineOfField(text, "spec.rules[0].backendRefs[1]"), 7);
  assert.equal(lineOfField(text, "nothing"), null);
});

const doc = (kind, name, spec, status = {}) => ({ kind, metadata: { name, namespace: "default" }, spec, status });

test("the model follows watch events and ignores malformed ones", () => {
  const model = new MeshModel();
  assert.equal(model.applyEvent({ type: "PUT", revision: 3, object: doc("Service", "a", {}) }, 1000), true);
  assert.equal(model.applyEvent({ type: "PUT", revision: 4, object: { kind: "Service" } }, 1000), false);
  assert.equal(model.applyEvent({ type: "BOGUS", revision: 4, object: doc("Service", "b", {}) }, 1000), false);
  assert.equal(model.applyEvent(null, 1000), false);
  assert.equal(model.list("Service").length, 1);
  model.applyEvent({ type: "DELETE", revision: 5, object: doc("Service", "a", {}) }, 2000, false);
  assert.equal(model.list("Service").length, 0);
  assert.equal(model.revision, 5);
  assert.deepEqual(model.events.map((e) => `${e.type} ${e.name} ${e.revision}`), ["PUT a 3"]);
});

test("service summaries count healthy/total, undeclared services and stale proxies", () => {
  const now = Date.parse("2026-01-01T00:10:00Z");
  const model = new MeshModel();
  model.loadListing("Service", [doc("Service", "reviews", {})]);
  model.loadListing("Instance", [
    doc("Instance", "reviews-1", { service: "reviews", proxy: "reviews-1" }, { health: "healthy" }),
    doc("Instance", "reviews-2", { service: "reviews", proxy: "reviews-2" }, { health: "unhealthy" }),
    doc("Instance", "ratings-1", { service: "ratings", proxy: "ratings-1" }),
  ]);
  model.proxies = {
    latest: 9,
    items: [
      { id: "reviews-1", connected: true, sentVersion: 9, ackedVersion: 9, lastSeen: "2026-01-01T00:09:59Z" },
      { id: "ratings-1", connected: true, sentVersion: 9, ackedVersion: 9, lastSeen: "2026-01-01T00:05:00Z" },
    ],
  };
  const rows = Object.fromEntries(serviceSummaries(model, now).map((r) => [r.name, r]));
  assert.deepEqual([rows.reviews.healthy, rows.reviews.total, rows.reviews.declared, rows.reviews.stale], [1, 2, true, 0]);
  assert.deepEqual([rows.ratings.healthy, rows.ratings.total, rows.ratings.declared, rows.ratings.stale], [1, 1, false, 1]);
});

test("proxyStaleness names why a proxy is behind", () => {
  const now = Date.parse("2026-01-01T00:10:00Z");
  const fresh = { connected: true, sentVersion: 5, ackedVersion: 5, lastSeen: "2026-01-01T00:09:59Z" };
  assert.equal(proxyStaleness(fresh, 5, now), null);
  assert.equal(proxyStaleness({ ...fresh, connected: false }, 5, now), "disconnected");
  assert.equal(proxyStaleness({ ...fresh, ackedVersion: 4 }, 5, now), "has not acked");
  assert.equal(proxyStaleness({ ...fresh, lastSeen: "2026-01-01T00:00:00Z" }, 5, now), "not seen for over a minute");
});

test("topology draws an edge per (parent, backend) with the routes that make it", () => {
  const model = new MeshModel();
  model.loadListing("HTTPRoute", [
    { ...route([1, 1]), metadata: { name: "split", namespace: "default" } },
    doc("HTTPRoute", "front", { parentRefs: [{ name: "web" }], rules: [{ backendRefs: [{ name: "reviews", namespace: "shop" }] }] }),
  ]);
  const graph = topology(model);
  assert.deepEqual(graph.nodes, ["default/reviews", "default/web", "shop/reviews"]);
  const edges = graph.edges.map((e) => `${e.from}->${e.to} ${[...e.routes].join(",")}`).sort();
  assert.deepEqual(edges, ["default/reviews->default/reviews default/split", "default/web->shop/reviews default/front"]);
});

// --- second version: metrics, charts, canaries, topology with traffic, decisions ---
import { ACTIVE_PHASES, CanarySamples, parseSteps, seriesOf, specFromForm } from "../../../src/gossamer/ui/static/canary.js";
import { pathOf, scale, yDomain } from "../../../src/gossamer/ui/static/chart.js";
import {
  HISTORY_MS, MetricsHistory, backfillPoints, backfillWindows, formatPercent, formatSeconds, healthTone, mtlsCoverage,
} from "../../../src/gossamer/ui/static/metrics.js";
import { canaryDecisions } from "../../../src/gossamer/ui/static/page-events.js";
import { withTraffic } from "../../../src/gossamer/ui/static/page-topology.js";

const item = (service, requests, successRate, rps = requests / 30) => ({ service, requests, rps, successRate, p50: 0.01, p99: 0.05 });

test("MetricsHistory keeps one point per poll and forgets what is older than ten minutes", () => {
  const m = new MetricsHistory();
  m.record(0, { items: [item("default/web", 30, 1)] }, { items: [] });
  m.record(HISTORY_MS / 2, { items: [item("default/web", 60, 0.5)] }, { items: [] });
  assert.equal(m.history("default/web").length, 2);
  assert.equal(m.of("default/web").requests, 60);
  m.record(HISTORY_MS + 1, { items: [] }, { items: [] });
  assert.deepEqual(m.history("default/web").map((p) => p.t), [HISTORY_MS / 2]);
  assert.equal(m.of("default/web"), null); // not in the latest answer: no current numbers
  m.record(2 * HISTORY_MS, { items: [] }, { items: [] });
  assert.deepEqual(m.history("default/web"), []);
});

test("backfillPoints rebuilds older 30 s readings from differences of windows", () => {
  // Slots (newest first) of one service: 10 requests per slot, slot 3 back had 5 failures.
  const perSlot = Array.from({ length: 20 }, (_, k) => ({ requests: 10, failures: k === 3 ? 5 : 0 }));
  const bodies = new Map(backfillWindows(12).map((w) => {
    const slots = perSlot.slice(0, w / 10 + 1); // a window of w seconds covers w/10 + 1 slots
    const requests = slots.reduce((s, x) => s + x.requests, 0);
    const failures = slots.reduce((s, x) => s + x.failures, 0);
    return [w, { items: [item("default/web", requests, 1 - failures / requests)] }];
  }));
  const points = backfillPoints(bodies, 1_000_000, 12).get("default/web");
  assert.equal(points.length, 12);
  assert.deepEqual(points.map((p) => p.t), Array.from({ length: 12 }, (_, i) => 1_000_000 - (13 - i) * 10_000));
  for (const p of points) assert.ok(Math.abs(p.rps - 40 / 30) < 1e-9, `rps ${p.rps}`);
  // The reading 20 s ago spans slots 2..5 back: it holds the failing slot (5 of 40 failed).
  const twentyAgo = points.find((p) => p.t === 1_000_000 - 20_000);
  assert.equal(twentyAgo.successRate, 1 - 5 / 40);
  const seventyAgo = points.find((p) => p.t === 1_000_000 - 70_000);
  assert.equal(seventyAgo.successRate, 1);
  const m = new MetricsHistory();
  m.record(1_000_000, { items: [item("default/web", 40, 1)] }, { items: [] });
  m.backfill(new Map([["default/web", points]]));
  assert.equal(m.history("default/web").length, 13);
  assert.equal(m.history("default/web").at(-1).t, 1_000_000);
});

test("health tones, mTLS coverage and number formats", () => {
  assert.equal(healthTone(1, 10), "ok");
  assert.equal(healthTone(0.98, 10), "degraded");
  assert.equal(healthTone(0.9, 10), "failing");
  assert.equal(healthTone(null, 0), "idle");
  const edges = [
    { src: "default/a", dst: "default/web", requests: 30, mtls: true },
    { src: "", dst: "default/web", requests: 10, mtls: false },
    { src: "default/a", dst: "default/other", requests: 5, mtls: false },
  ];
  assert.equal(mtlsCoverage(edges, "default/web"), 0.75);
  assert.equal(mtlsCoverage(edges, "default/none"), null);
  assert.equal(formatPercent(0.99999), "99.9%"); // never rounds a failure up to 100%
  assert.equal(formatPercent(1), "100.0%");
  assert.equal(formatSeconds(0.0123), "12 ms");
  assert.equal(formatSeconds(2), "2.00 s");
});

test("chart scales, domains and paths with gaps", () => {
  const x = scale([0, 10], [0, 100]);
  assert.equal(x(5), 50);
  assert.deepEqual(yDomain([], []), [0, 1]);
  const [lo, hi] = yDomain([{ points: [[0, 2], [1, 4]] }], [{ value: 10 }]);
  assert.equal(lo, 0);
  assert.ok(hi > 10);
  assert.deepEqual(yDomain([{ points: [[0, 1], [1, 1]] }], [], false, 1), [0.9, 1]);
  assert.equal(pathOf([[0, 0], [1, 1], [2, null], [3, 1]], (t) => t, (v) => v), "M0.0,0.0L1.0,1.0M3.0,1.0");
});

test("the canary form becomes a spec, or names the wrong fields", () => {
  assert.deepEqual(parseSteps("5, 25,50 100"), [5, 25, 50, 100]);
  assert.equal(parseSteps("5, x"), null);
  const good = { service: "reviews", baseline: "v1", canary: "v2", steps: "10,50", interval: "1m",
    maxErrorRate: "1", maxP99: "250ms", minRequests: "100", route: "" };
  const { spec, errors } = specFromForm(good);
  assert.deepEqual(errors, {});
  assert.deepEqual(spec, { service: "reviews", baseline: { version: "v1" }, canary: { version: "v2" }, interval: "1m",
    steps: [10, 50], thresholds: { maxErrorRate: 1, maxP99: "250ms", minRequests: 100 } });
  const bad = specFromForm({ ...good, steps: "ten", interval: "soon", maxP99: "fast", minRequests: "0", canary: " " });
  assert.deepEqual(Object.keys(bad.errors).sort(),
    ["spec.canary", "spec.interval", "spec.steps", "spec.thresholds.maxP99", "spec.thresholds.minRequests"]);
  assert.equal(specFromForm({ ...good, maxP99: "" }).spec.thresholds.maxP99, undefined);
  assert.ok(ACTIVE_PHASES.has("Progressing") && !ACTIVE_PHASES.has("Aborted"));
});

test("canary samples and series merge the history with live readings", () => {
  const samples = new CanarySamples(2);
  const status = (at, rate) => ({ measured: { at, canary: { requests: 10, errorRate: rate, p99: 0.1 }, baseline: null } });
  samples.note("d/c", status("2026-01-01T00:00:01Z", 0.1));
  samples.note("d/c", status("2026-01-01T00:00:01Z", 0.5)); // same reading again: ignored
  samples.note("d/c", status("2026-01-01T00:00:02Z", 0.2));
  samples.note("d/c", status("2026-01-01T00:00:03Z", 0.3));
  assert.deepEqual(samples.get("d/c").map((s) => s.canary.errorRate), [0.2, 0.3]); // bounded
  const history = [{ time: "2026-01-01T00:00:00Z", canary: { errorRate: 0 }, baseline: { errorRate: 0.01 } }];
  const series = seriesOf({ history }, samples.get("d/c"), "canary", "errorRate");
  assert.deepEqual(series.map((p) => p[1]), [0, 0.2, 0.3]);
  assert.deepEqual(seriesOf({ history }, samples.get("d/c"), "baseline", "errorRate").map((p) => p[1]), [0.01]);
});

test("topology adds measured edges to the config's and canary decisions are listed newest first", () => {
  const graph = { nodes: ["default/a", "default/b"], edges: [{ from: "default/a", to: "default/b", routes: new Set(["default/r"]) }] };
  const merged = withTraffic(graph, [
    { src: "default/a", dst: "default/b", requests: 5, rps: 1, successRate: 1, mtls: true },
    { src: "default/c", dst: "default/a", requests: 5, rps: 1, successRate: 0.5, mtls: false },
    { src: "", dst: "default/a", requests: 5, rps: 1, successRate: 1, mtls: false },
  ]);
  assert.deepEqual(merged.nodes, ["default/a", "default/b", "default/c"]);
  assert.equal(merged.edges.length, 2);
  assert.equal(merged.edges.find((e) => e.from === "default/a").traffic.rps, 1);
  assert.deepEqual([...merged.edges.find((e) => e.from === "default/a").routes], ["default/r"]);
  assert.equal(graph.edges[0].traffic, undefined); // the input is not changed
  const model = new MeshModel();
  const canaryDoc = (name, times) => ({ kind: "Canary", metadata: { name, namespace: "default" }, spec: {},
    status: { history: times.map((time) => ({ time, action: "step", canary: { requests: 1 } })) } });
  model.loadListing("Canary", [canaryDoc("a", ["2026-01-01T00:00:01Z"]), canaryDoc("b", ["2026-01-01T00:00:00Z", "2026-01-01T00:00:02Z"])]);
  const decisions = canaryDecisions(model);
  assert.deepEqual(decisions.map((d) => `${d.canaryName}@${d.time.slice(17, 19)}`), ["default/b@02", "default/a@01", "default/b@00"]);
  assert.equal(decisions[0].canary.requests, 1); // the numbers keep their own field
});

test("events carry who made the change when the control plane records it", () => {
  const model = new MeshModel();
  const doc = { kind: "Service", metadata: { name: "s", namespace: "default", annotations: { "gossamer.dev/changed-by": "alice" } } };
  model.applyEvent({ type: "PUT", revision: 3, object: doc }, 0);
  model.applyEvent({ type: "PUT", revision: 4, object: { ...doc, metadata: { name: "t" } } }, 0);
  assert.deepEqual(model.events.map((e) => e.by), [null, "alice"]);
});
