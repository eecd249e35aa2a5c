// Building DOM from data. Text always goes in as text nodes: names, labels and messages
// come from the API and are never parsed as HTML.

/** h("tag.class", {attrs, on: {event: fn}}, ...children) */
export function h(spec, props = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name in el && !name.startsWith("aria") && name !== "role" && name !== "for") {
      el[name] = value;
    } else {
      el.setAttribute(name === "for" ? "for" : name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  append(el, children);
  return el;
}

export const link = (href, text, props = {}) => h("a", { href, ...props }, text);

export function table(caption, headers, rows, props = {}) {
  return h(
    "table",
    props,
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td.empty", { colSpan: headers.length }, "none"))),
  );
}

export const labelsText = (labels) =>
  Object.entries(labels || {})
    .map(([k, v]) => `${k}=${v}`)
    .join(", ") || "—";

export function relativeTime(ms, nowMs) {
  if (!Number.isFinite(ms)) return "—";
  const seconds = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  return `${Math.floor(seconds / 3600)}h ago`;
}

/** A status badge that says its state in words, not only in colour. */
export const badge = (text, tone) => h(`span.badge.${tone}`, {}, text);
