// Overview: every service with healthy/total instances; unhealthy or stale rows stand out.
// Metrics columns show "—" until the observability work serves them.
import { badge, h, link, table } from "./dom.js";
import { serviceSummaries } from "./model.js";

export const title = "Overview";

function statusOf(s) {
  if (s.total === 0) return badge("no instances", "muted");
  if (s.healthy < s.total) return badge(`${s.total - s.healthy} unhealthy`, "bad");
  if (s.stale > 0) return badge(`${s.stale} stale`, "warn");
  return badge("healthy", "ok");
}

export function render(ctx) {
  const summaries = serviceSummaries(ctx.model, Date.now());
  const rows = summaries.map((s) => {
    const href = `#/service/${encodeURIComponent(s.namespace)}/${encodeURIComponent(s.name)}`;
    const trouble = s.total > 0 && (s.healthy < s.total || s.stale > 0);
    return h(
      `tr${trouble ? ".trouble" : ""}`,
      { dataset: { service: `${s.namespace}/${s.name}` } },
      h("th", { scope: "row" }, link(href, s.name), s.declared ? null : h("span.note", {}, " (undeclared)")),
      h("td", {}, s.namespace),
      h("td.num", { dataset: { cell: "instances" } }, `${s.healthy}/${s.total}`),
      h("td", {}, statusOf(s)),
      h("td.num", {}, String(s.routes)),
      h("td.num", { title: "metrics arrive with the observability work" }, "—"),
      h("td.num", {}, "—"),
      h("td.num", {}, "—"),
    );
  });
  const unhealthy = summaries.filter((s) => s.healthy < s.total).length;
  return h(
    "section",
    {},
    h("h1", {}, "Overview"),
    h(
      "p.summary",
      {},
      `${summaries.length} services, ${unhealthy} with unhealthy instances, `,
      `${ctx.model.proxies.items.length} proxies connected.`,
    ),
    h(
      "div.scroll",
      {},
      table(
        "Services",
        ["Service", "Namespace", "Healthy/total", "Status", "Routes", "RPS", "Success", "p99"],
        rows,
        { id: "services-table" },
      ),
    ),
  );
}
