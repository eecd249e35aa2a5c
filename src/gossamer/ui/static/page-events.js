// Events: the live list of changes from the watch stream.
import { h, table } from "./dom.js";

export const title = "Events";

export function render(ctx) {
  const rows = ctx.model.events.map((e) =>
    h(
      "tr",
      { dataset: { event: `${e.kind}/${e.namespace}/${e.name}` } },
      h("td", {}, new Date(e.time).toLocaleTimeString()),
      h("td", {}, e.type),
      h("td", {}, e.kind),
      h("th", { scope: "row" }, `${e.namespace}/${e.name}`),
      h("td.num", {}, String(e.revision)),
    ),
  );
  return h(
    "section",
    {},
    h("h1", {}, "Events"),
    h("p.summary", {}, `Changes seen since this page opened (newest first, at most 500). Revision ${ctx.model.revision}.`),
    h("div.scroll", {}, table("Changes", ["Time", "Type", "Kind", "Name", "Revision"], rows, { id: "events-table" })),
  );
}
