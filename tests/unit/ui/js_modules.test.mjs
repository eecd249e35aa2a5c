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
