// Events: the live list of changes from the watch stream (with the operator who made each
// one, where the control plane records it), and every canary's decisions with the numbers
// behind them (from the Canary status history).
import { badge, h, link, table } from "./dom.js";
import { numbers } from "./page-canary.js";

export const title = "Events";

/** Every canary's history entries, newest first: [{...entry, canaryName}]. */
export function canaryDecisions(model) {
  const all = [];
  for (const c of model.list("Canary")) {
    const key = `${c.metadata.namespace || "default"}/${c.metadata.name}`;
    for (const entry of (c.status && c.status.history) || []) all.push({ ...entry, canaryName: key });
  }
  return all.sort((a, b) => String(b.time).localeCompare(String(a.time)));
}

function auditTable(audit) {
  if (audit === null) return h("p.note", {}, "This control plane keeps no audit log (it runs without credentials).");
  const rows = audit.map((a) => {
    const ok = a.status >= 200 && a.status < 300;
    return h(
      "tr",
      { dataset: { audit: `${a.method} ${a.path}` } },
      h("td", {}, new Date(a.time).toLocaleTimeString()),
      h("th", { scope: "row" }, `${a.who} (${a.role})`),
      h("td", {}, a.method),
      h("td.wrap", {}, a.path),
      h("td", {}, badge(String(a.status), ok ? "ok" : "bad")),
    );
  });
  return h("div.scroll", {}, table("Who changed what (audit log, newest first)", ["Time", "Operator", "Method", "Path", "Result"],
    rows, { id: "audit-table" }));
}

export function render(ctx) {
  // Objects annotated with gossamer.dev/changed-by name their author; none are yet.
  const anyBy = ctx.model.events.some((e) => e.by);
  const rows = ctx.model.events.map((e) =>
    h(
      "tr",
      { dataset: { event: `${e.kind}/${e.namespace}/${e.name}` } },
      h("td", {}, new Date(e.time).toLocaleTimeString()),
      h("td", {}, e.type),
      h("td", {}, e.kind),
      h("th", { scope: "row" }, `${e.namespace}/${e.name}`),
      anyBy ? h("td", { dataset: { cell: "by" } }, e.by || "—") : null,
      h("td.num", {}, String(e.revision)),
    ),
  );
  const decisions = canaryDecisions(ctx.model).map((d) =>
    h(
      "tr",
      { dataset: { decision: d.canaryName } },
      h("td", {}, new Date(d.time).toLocaleTimeString()),
      h("th", { scope: "row" }, link(`#/canary/${d.canaryName.split("/").map(encodeURIComponent).join("/")}`, d.canaryName)),
      h("td", {}, d.action),
      h("td.num", {}, String((d.step ?? -1) + 1)),
      h("td", {}, `${d.weights?.baseline ?? "—"}/${d.weights?.canary ?? "—"}`),
      h("td", {}, numbers(d.canary)),
      h("td.wrap", {}, d.reason || ""),
    ),
  );
  return h(
    "section",
    {},
    h("h1", {}, "Events"),
    h("p.summary", {}, `Changes seen since this page opened (newest first, at most 500). Revision ${ctx.model.revision}.`),
    auditTable(ctx.model.audit),
    h("div.scroll", {}, table("Changes", ["Time", "Type", "Kind", "Name", ...(anyBy ? ["By"] : []), "Revision"], rows, { id: "events-table" })),
    h("div.scroll", {}, table("Canary decisions", ["Time", "Canary", "Action", "Step", "Weights b/c", "Canary numbers", "Reason"],
      decisions, { id: "decisions-table" })),
  );
}
