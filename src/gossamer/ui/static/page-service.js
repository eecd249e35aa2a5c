// One service: charts of its golden metrics over the last minutes, its instances (address,
// labels, health, proxy snapshot version), routes, policies.
import { lineChart } from "./chart.js";
import { badge, h, labelsText, link, relativeTime, table } from "./dom.js";
import { HISTORY_MS, formatPercent, formatRate, formatSeconds } from "./metrics.js";
import { dump } from "./js-yaml.mjs";
import { healthOf, instancesOf, policiesOf, proxiesById, proxyStaleness, routesOf } from "./model.js";
import { backendLabel } from "./weights.js";

export const title = "Service";

function snapshotCell(proxy, latest) {
  if (!proxy) return "no stream";
  const lag = proxy.ackedVersion == null ? "not acked" : `acked ${proxy.ackedVersion}`;
  return `${lag} / latest ${latest}`;
}

/** When the instance's SVID expires; a soon or past expiry is said as trouble. */
function certCell(held, now) {
  const notAfter = held ? Date.parse(held.notAfter) : NaN;
  if (!Number.isFinite(notAfter)) return h("td", { dataset: { cell: "cert" } }, "—");
  const left = notAfter - now;
  const when = left <= 0 ? `expired ${relativeTime(notAfter, now)}` : `expires in ${relativeTime(now - left, now).replace(" ago", "")}`;
  const tone = left <= 0 ? "bad" : left < 3600_000 ? "warn" : "ok";
  return h("td", { dataset: { cell: "cert" }, title: `${held.spiffeId}, not after ${held.notAfter}` }, badge(when, tone));
}

function instanceRows(ctx, instances) {
  const proxies = proxiesById(ctx.model.proxies);
  const now = Date.now();
  return instances.map((inst) => {
    const spec = inst.spec || {};
    const proxy = spec.proxy ? proxies.get(spec.proxy) : null;
    const health = healthOf(inst);
    const stale = proxyStaleness(proxy, ctx.model.proxies.latest, now);
    return h(
      `tr${health === "unhealthy" || stale ? ".trouble" : ""}`,
      { dataset: { instance: inst.metadata.name } },
      h("th", { scope: "row" }, inst.metadata.name),
      h("td", {}, `${spec.address}:${spec.port}`),
      h("td", {}, (spec.labels && spec.labels.version) || "—"),
      h("td", {}, labelsText(spec.labels)),
      h("td", {}, badge(health, health === "unhealthy" ? "bad" : "ok"), stale ? badge(stale, "warn") : null),
      h("td", {}, spec.proxy || "—"),
      h("td", {}, snapshotCell(proxy, ctx.model.proxies.latest)),
      certCell(spec.proxy ? ctx.model.identities.get(spec.proxy) : null, now),
    );
  });
}

function matchText(match) {
  const parts = [];
  if (match.path) parts.push(`${match.path.type || "PathPrefix"} ${match.path.value ?? "/"}`);
  if (match.method) parts.push(match.method);
  for (const hm of match.headers || []) parts.push(`header ${hm.name}=${hm.value}`);
  for (const q of match.queryParams || []) parts.push(`query ${q.name}=${q.value}`);
  return parts.join(", ") || "any request";
}

function routeBlock(route) {
  const ns = route.metadata.namespace || "default";
  const href = `#/traffic/${encodeURIComponent(ns)}/${encodeURIComponent(route.metadata.name)}`;
  const rules = ((route.spec && route.spec.rules) || []).map((rule, i) =>
    h(
      "li",
      {},
      `rule ${i}: `,
      ((rule.matches && rule.matches.length ? rule.matches : [{}]).map(matchText)).join(" | "),
      " → ",
      (rule.backendRefs || []).map((b) => `${backendLabel(b)} (weight ${b.weight ?? 1})`).join(", ") || "the service itself",
    ),
  );
  return h(
    "article.card",
    {},
    h("h3", {}, `${ns}/${route.metadata.name}`, " ", link(href, "shift traffic", { class: "action" })),
    h("ul", {}, rules),
  );
}

function charts(ctx, key) {
  const points = ctx.metrics.history(key);
  const now = ctx.metrics.updatedAt || Date.now();
  const first = points.length ? points[0].t : now;
  const span = [Math.max(now - HISTORY_MS, Math.min(first, now - 60_000)), now];
  const series = (field, name, tone) => ({ name, tone, points: points.map((p) => [p.t, p[field]]) });
  return h(
    "div.charts",
    { id: "service-charts" },
    lineChart({ id: "chart-rps", title: "Requests per second", series: [series("rps", "rps", "a")], format: formatRate, span }),
    lineChart({ id: "chart-success", title: "Success rate", series: [series("successRate", "success", "a")],
      format: formatPercent, span, floorZero: false, ceiling: 1 }),
    lineChart({ id: "chart-latency", title: "Latency", series: [series("p50", "p50", "a"), series("p99", "p99", "b")],
      format: formatSeconds, span }),
  );
}

/** What each subset (version) served: shows a weight change or a canary taking traffic. */
function subsetTable(ctx, key) {
  const m = ctx.metrics.of(key);
  const rows = Object.entries((m && m.subsets) || {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([subset, s]) => h("tr", { dataset: { subset } },
      h("th", { scope: "row" }, subset || "(no version label)"),
      h("td.num", { dataset: { cell: "rps" } }, formatRate(s.rps)),
      h("td.num", { dataset: { cell: "share" } }, m.requests ? formatPercent(s.requests / m.requests) : "—"),
      h("td.num", {}, formatPercent(s.successRate)),
      h("td.num", {}, formatSeconds(s.p99))));
  return h("div.scroll", {}, table("By version (last 30 s)", ["Subset", "RPS", "Share", "Success", "p99"], rows, { id: "subsets-table" }));
}

export function render(ctx, [namespace, name]) {
  const instances = instancesOf(ctx.model, namespace, name);
  const routes = routesOf(ctx.model, namespace, name);
  const policies = policiesOf(ctx.model, namespace, name);
  const declared = ctx.model.get("Service", namespace, name);
  const healthy = instances.filter((i) => healthOf(i) !== "unhealthy").length;
  return h(
    "section",
    {},
    h("h1", {}, `Service ${namespace}/${name}`),
    h(
      "p.summary",
      {},
      declared ? "Declared. " : "Not declared (known from its instances). ",
      `${healthy}/${instances.length} instances healthy.`,
    ),
    h("h2", {}, "Golden metrics"),
    h("p.note", {}, "Each point is the last 30 s as callers saw them, read every 2 s while this page is open."),
    charts(ctx, `${namespace}/${name}`),
    subsetTable(ctx, `${namespace}/${name}`),
    h(
      "div.scroll",
      {},
      table(
        "Instances",
        ["Instance", "Address", "Version", "Labels", "Health", "Proxy", "Snapshot", "Certificate"],
        instanceRows(ctx, instances),
        { id: "instances-table" },
      ),
    ),
    h("h2", {}, "Routes"),
    routes.length ? routes.map(routeBlock) : h("p.note", {}, "No HTTPRoute: requests go to every healthy instance."),
    h("h2", {}, "Policies"),
    policies.length
      ? policies.map((p) =>
          h(
            "article.card",
            {},
            h("h3", {}, `${p.metadata.namespace}/${p.metadata.name}`),
            h("pre", {}, dump(p.spec || {}, { lineWidth: -1 })),
          ),
        )
      : h("p.note", {}, "No TrafficPolicy: the mesh defaults apply."),
  );
}
