// Overview: every service with healthy/total instances and its golden metrics (outbound
// view: what callers saw over the last 30 s), mTLS coverage of the calls into it.
// Unhealthy, stale or failing rows stand out, and say why in words.
import { badge, h, link, table } from "./dom.js";
import { formatPercent, formatRate, formatSeconds, healthTone, mtlsCoverage } from "./metrics.js";
import { serviceSummaries } from "./model.js";

export const title = "Overview";

function statusOf(s, tone) {
  const badges = [];
  if (s.total === 0) badges.push(badge("no instances", "muted"));
  else if (s.healthy < s.total) badges.push(badge(`${s.total - s.healthy} unhealthy`, "bad"));
  if (s.stale > 0) badges.push(badge(`${s.stale} stale`, "warn"));
  if (tone === "failing") badges.push(badge("failing", "bad"));
  else if (tone === "degraded") badges.push(badge("degraded", "warn"));
  if (!badges.length) badges.push(badge("healthy", "ok"));
  return badges;
}

function mtlsCell(share) {
  if (share == null) return h("td.num", { dataset: { cell: "mtls" } }, "—");
  const tone = share >= 1 ? "ok" : share > 0 ? "warn" : "bad";
  return h("td.num", { dataset: { cell: "mtls" } }, badge(formatPercent(share), tone));
}

export function render(ctx) {
  const summaries = serviceSummaries(ctx.model, Date.now());
  const { metrics } = ctx;
  let troubled = 0;
  const rows = summaries.map((s) => {
    const key = `${s.namespace}/${s.name}`;
    const href = `#/service/${encodeURIComponent(s.namespace)}/${encodeURIComponent(s.name)}`;
    const m = metrics.of(key);
    const tone = m ? healthTone(m.successRate, m.requests) : "idle";
    const trouble = (s.total > 0 && (s.healthy < s.total || s.stale > 0)) || tone === "failing" || tone === "degraded";
    if (trouble) troubled += 1;
    return h(
      `tr${trouble ? ".trouble" : ""}`,
      { dataset: { service: key } },
      h("th", { scope: "row" }, link(href, s.name), s.declared ? null : h("span.note", {}, " (undeclared)")),
      h("td", {}, s.namespace),
      h("td.num", { dataset: { cell: "instances" } }, `${s.healthy}/${s.total}`),
      h("td", {}, statusOf(s, tone)),
      h("td.num", { dataset: { cell: "rps" } }, formatRate(m && m.rps)),
      h("td.num", { dataset: { cell: "success" } }, m && m.requests ? formatPercent(m.successRate) : "—"),
      h("td.num", { dataset: { cell: "p50" } }, formatSeconds(m && m.p50)),
      h("td.num", { dataset: { cell: "p99" } }, formatSeconds(m && m.p99)),
      mtlsCell(mtlsCoverage(metrics.edges, key)),
      h("td.num", {}, String(s.routes)),
    );
  });
  return h(
    "section",
    {},
    h("h1", {}, "Overview"),
    h(
      "p.summary",
      {},
      `${summaries.length} services, ${troubled} needing attention, `,
      `${ctx.model.proxies.items.length} proxies connected. Metrics: last 30 s, as callers saw them`,
      metrics.updatedAt ? ` (updated ${new Date(metrics.updatedAt).toLocaleTimeString()}).` : " (waiting for the first reading).",
    ),
    metrics.error ? h("p.notice", {}, `Metrics could not be read: ${metrics.error}. Showing the last numbers.`) : null,
    h(
      "div.scroll",
      {},
      table(
        "Services",
        ["Service", "Namespace", "Healthy/total", "Status", "RPS", "Success", "p50", "p99", "mTLS", "Routes"],
        rows,
        { id: "services-table" },
      ),
    ),
  );
}
