// Config: every resource as YAML; edit, validate (apply with dryRun) with errors shown at
// their line, then apply. Nothing is stored until "Apply" succeeds.
import { ApiError, KINDS, applyDocuments } from "./api.js";
import { h } from "./dom.js";
import { dump, loadAll } from "./js-yaml.mjs";
import { lineOfField } from "./locate.js";
import { keyOf } from "./model.js";
import { mayChange, readOnlyNote } from "./readonly.js";

export const title = "Config";

/** The document as a user edits it: system-owned fields dropped. */
export function editable(doc) {
  const meta = { name: doc.metadata.name, namespace: doc.metadata.namespace || "default" };
  if (doc.metadata.labels && Object.keys(doc.metadata.labels).length) meta.labels = doc.metadata.labels;
  if (doc.metadata.annotations && Object.keys(doc.metadata.annotations).length) meta.annotations = doc.metadata.annotations;
  return { apiVersion: doc.apiVersion || "gossamer.dev/v1", kind: doc.kind, metadata: meta, spec: doc.spec || {} };
}

const toYaml = (doc) => dump(editable(doc), { lineWidth: -1, noRefs: true });

// Which of the edited documents an API error names ("HTTPRoute default/x" or "document 2").
function documentIndex(errorDocument, docs) {
  const m = /^document (\d+)$/.exec(errorDocument || "");
  if (m) return Number(m[1]) - 1;
  const i = docs.findIndex((d) => d && d.metadata && `${d.kind} ${d.metadata.namespace || "default"}/${d.metadata.name}` === errorDocument);
  return i < 0 ? 0 : i;
}

// Line offsets of each document in a multi-document text ("---" separators).
function documentStarts(text) {
  const starts = [0];
  text.split("\n").forEach((line, i) => {
    if (/^---\s*$/.test(line) && i > 0) starts.push(i + 1);
  });
  return starts;
}

export function mount(ctx) {
  const kindSelect = h("select", { id: "config-kind", "aria-label": "Resource kind" },
    KINDS.map((k) => h("option", { value: k.kind }, k.kind)));
  const picker = h("ul.picker", { id: "config-resources", "aria-label": "Resources" });
  const editor = h("textarea", { id: "config-editor", spellcheck: false, rows: 24, wrap: "off",
    "aria-describedby": "config-errors", placeholder: "Pick a resource, or paste YAML documents to create them." });
  const gutter = h("pre.gutter", { "aria-hidden": "true" });
  const errorsBox = h("div", { id: "config-errors", role: "alert", "aria-live": "assertive" });
  const resultBox = h("div", { id: "config-result", role: "status", "aria-live": "polite" });
  let errorLines = new Map(); // line -> message
  let selected = null; // "Kind ns/name" of the resource loaded into the editor

  const drawGutter = () => {
    const count = editor.value.split("\n").length;
    gutter.replaceChildren(...Array.from({ length: count }, (_, i) =>
      h(`span${errorLines.has(i + 1) ? ".err" : ""}`, { title: errorLines.get(i + 1) || "" }, `${i + 1}\n`)));
    gutter.scrollTop = editor.scrollTop;
  };
  editor.addEventListener("input", () => { errorLines = new Map(); drawGutter(); });
  editor.addEventListener("scroll", () => { gutter.scrollTop = editor.scrollTop; });

  const drawPicker = () => {
    const docs = ctx.model.list(kindSelect.value);
    picker.replaceChildren(...(docs.length ? docs.map((doc) =>
      h("li", {}, h("button", { type: "button", dataset: { key: keyOf(doc) }, on: { click: () => load(doc) },
        "aria-current": selected === `${kindSelect.value} ${keyOf(doc)}` ? "true" : null },
        keyOf(doc)))) : [h("li.note", {}, `No ${kindSelect.value} yet.`)]));
  };
  kindSelect.addEventListener("change", drawPicker);

  function load(doc) {
    selected = `${doc.kind} ${keyOf(doc)}`;
    drawPicker();
    editor.value = toYaml(doc);
    errorLines = new Map();
    errorsBox.replaceChildren();
    resultBox.replaceChildren();
    drawGutter();
    editor.focus();
  }

  function goToLine(line) {
    const lines = editor.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    editor.focus();
    editor.setSelectionRange(start, start + (lines[line - 1] || "").length);
  }

  function showErrors(err, docs) {
    const body = err instanceof ApiError ? err.body : { message: String(err.message || err) };
    const starts = documentStarts(editor.value);
    const items = (body.errors && body.errors.length ? body.errors : [body]).map((e) => {
      let line = null;
      if (e.field && docs) {
        const di = documentIndex(e.document, docs);
        const text = editor.value.split("\n").slice(starts[di] || 0).join("\n");
        const found = lineOfField(text, e.field);
        line = found === null ? null : found + (starts[di] || 0);
      } else if (e.line) line = e.line;
      const message = `${e.field ? `${e.field}: ` : ""}${e.message}${e.value !== undefined && e.value !== null ? ` (got ${JSON.stringify(e.value)})` : ""}`;
      if (line) errorLines.set(line, message);
      return h("li.field-error", { dataset: { field: e.field || "", line: line || "" } },
        line ? h("button.link", { type: "button", on: { click: () => goToLine(line) } }, `line ${line}`) : null,
        line ? " " : null, message);
    });
    errorsBox.replaceChildren(h("p.error", {}, body.message || "Invalid"), h("ul", {}, items));
    editor.setAttribute("aria-invalid", "true");
    drawGutter();
  }

  async function submit(dryRun) {
    errorsBox.replaceChildren();
    resultBox.replaceChildren();
    errorLines = new Map();
    editor.removeAttribute("aria-invalid");
    let docs;
    try {
      docs = loadAll(editor.value).filter((d) => d !== null && d !== undefined);
    } catch (err) {
      const line = err.mark ? err.mark.line + 1 : null;
      showErrors({ message: `YAML: ${err.reason || err.message}`, }, null);
      if (line) errorLines.set(line, err.reason || err.message);
      drawGutter();
      return;
    }
    if (!docs.length) {
      errorsBox.replaceChildren(h("p.error", {}, "Nothing to apply: the editor is empty."));
      return;
    }
    try {
      await applyDocuments(docs, true); // always validate first: all-or-nothing, nothing stored
      if (dryRun) {
        resultBox.replaceChildren(h("p.ok", {}, `Valid: ${docs.length} document(s) would apply.`));
        return;
      }
      const result = await applyDocuments(docs, false);
      resultBox.replaceChildren(h("p.ok", {}, "Applied: ",
        result.results.map((r) => `${r.kind} ${r.namespace}/${r.name} ${r.action}`).join("; ")),
      result.warnings && result.warnings.length ? h("ul", {}, result.warnings.map((w) => h("li.warn", {}, w))) : null);
    } catch (err) {
      showErrors(err, docs);
    }
  }

  const locked = !mayChange(); // a viewer reads the YAML; validating and applying are POSTs
  if (locked) editor.readOnly = true;
  const lockedProps = locked ? { disabled: true, "aria-describedby": "readonly-note" } : {};
  const root = h("section", { id: "config-page" }, h("h1", {}, "Config"), readOnlyNote("validating and applying"),
    h("div.config", {},
      h("nav.side", { "aria-label": "Pick a resource" }, h("label", { for: "config-kind" }, "Kind "), kindSelect, picker),
      h("div.editor", {},
        h("label.block", { for: "config-editor" }, "YAML (one or more documents separated by ---)"),
        h("div.code", {}, gutter, editor),
        h("div.buttons", {},
          h("button", { type: "button", id: "config-validate", ...lockedProps, on: { click: () => submit(true) } }, "Validate"),
          " ",
          h("button.primary", { type: "button", id: "config-apply", ...lockedProps, on: { click: () => submit(false) } }, "Apply")),
        errorsBox, resultBox)));
  drawPicker();
  drawGutter();
  return { node: root, update: drawPicker };
}
