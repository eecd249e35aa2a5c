// Find the line of a field path ("spec.rules[0].backendRefs[1].weight") in block-style
// YAML text, so an API error can be shown at the field it names. Pure; best effort: when
// a segment is absent (a missing required field) it answers the deepest line found.

/** "a.b[0].c" -> ["a", "b", 0, "c"] */
export function parseFieldPath(path) {
  const out = [];
  for (const part of String(path || "").split(".")) {
    const m = part.match(/^([^[\]]*)((?:\[\d+\])*)$/);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

function unquote(key) {
  const k = key.trim();
  if ((k.startsWith('"') && k.endsWith('"')) || (k.startsWith("'") && k.endsWith("'"))) {
    return k.slice(1, -1);
  }
  return k;
}

/** Shape of one line: leading indent, dash positions, and the key it defines if any. */
export function scanLine(text) {
  const indent = text.length - text.trimStart().length;
  const trimmed = text.trim();
  if (!trimmed || trimmed.startsWith("#")) return { blank: true, indent };
  const dashes = [];
  let col = indent;
  let rest = text.slice(indent);
  while (rest === "-" || rest.startsWith("- ")) {
    dashes.push(col);
    const after = rest.slice(1);
    const pad = after.length - after.trimStart().length;
    col += 1 + pad;
    rest = after.trimStart();
  }
  const m = rest.match(/^("[^"]*"|'[^']*'|[^\s:#'"][^:#]*?)\s*:(\s|$)/);
  return { blank: false, indent, dashes, keyIndent: col, key: m ? unquote(m[1]) : null };
}

// End of the block that starts at line `start` whose content sits deeper than `indent`.
function blockEnd(lines, start, indent, allowDashAtIndent) {
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i];
    if (l.blank) continue;
    if (l.indent < indent) return i;
    if (l.indent === indent && !(allowDashAtIndent && l.dashes.length && l.dashes[0] === indent)) return i;
  }
  return lines.length;
}

/** 1-based line of `fieldPath` within `yamlText` (the whole document), or null. */
export function lineOfField(yamlText, fieldPath) {
  const lines = yamlText.split("\n").map(scanLine);
  const segments = parseFieldPath(fieldPath);
  let start = 0;
  let end = lines.length;
  let parentIndent = -1;
  let found = null;
  for (const segment of segments) {
    if (typeof segment === "number") {
      // Items of the sequence: the dashes at the smallest column deeper than the parent.
      let dashCol = null;
      const items = [];
      for (let i = start; i < end; i++) {
        const l = lines[i];
        if (l.blank) continue;
        for (const d of l.dashes) {
          if (d < parentIndent) continue;
          if (dashCol === null || d < dashCol) {
            dashCol = d;
            items.length = 0;
          }
          if (d === dashCol) items.push(i);
        }
      }
      if (segment >= items.length) return found;
      start = items[segment];
      end = segment + 1 < items.length ? items[segment + 1] : blockEnd(lines, start, dashCol + 1, false);
      parentIndent = dashCol + 1;
      found = start + 1;
    } else {
      let best = null;
      let childIndent = null;
      for (let i = start; i < end; i++) {
        const l = lines[i];
        if (l.blank || l.key === null || l.keyIndent <= parentIndent) continue;
        if (childIndent === null || l.keyIndent < childIndent) {
          childIndent = l.keyIndent;
          best = null;
        }
        if (l.keyIndent === childIndent && l.key === segment && best === null) best = i;
      }
      if (best === null) return found;
      start = best;
      end = Math.min(end, blockEnd(lines, best, childIndent, true));
      parentIndent = childIndent;
      found = best + 1;
    }
  }
  return found;
}
