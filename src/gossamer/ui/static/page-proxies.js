// Proxies: every connected proxy, the version it acked against the latest, when last seen.
import { badge, h, relativeTime, table } from "./dom.js";
import { proxyStaleness } from "./model.js";

export const title = "Proxies";

export function render(ctx) {
  const { latest, items } = ctx.model.proxies;
  const now = Date.now();
  const rows = items.map((p) => {
    const stale = proxyStaleness(p, latest, now);
    const inSync = !stale && p.ackedVersion === p.sentVersion;
    return h(
      `tr${stale ? ".trouble" : ""}`,
      { dataset: { proxy: p.id } },
      h("th", { scope: "row" }, p.id),
      h("td", {}, stale ? badge(stale, "warn") : inSync ? badge("in sync", "ok") : badge("sending", "muted")),
      h("td.num", {}, p.ackedVersion == null ? "—" : String(p.ackedVersion)),
      h("td.num", {}, String(p.sentVersion ?? "—")),
      h("td", {}, badge(p.connected ? "connected" : "disconnected", p.connected ? "ok" : "bad")),
      h("td", {}, `${p.namespace}/${p.service || "—"}`),
      h("td", { title: p.lastSeen || "" }, relativeTime(Date.parse(p.lastSeen), now)),
      h("td.num", {}, String(p.watching ?? "—")),
    );
  });
  return h(
    "section",
    {},
    h("h1", {}, "Proxies"),
    h("p.summary", {}, `Latest compiled version: ${latest}. ${items.length} proxies with a stream.`),
    h(
      "div.scroll",
      {},
      table("Connected proxies", ["Proxy", "Config", "Acked", "Sent", "Stream", "Service", "Last seen", "Watching"], rows, {
        id: "proxies-table",
      }),
    ),
  );
}
