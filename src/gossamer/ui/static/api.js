// Every call to the control plane goes through `request`, so that login and CSRF
// (the security work) add their header in one place.

export const KINDS = [
  { kind: "Service", plural: "services" },
  { kind: "Instance", plural: "instances" },
  { kind: "HTTPRoute", plural: "httproutes" },
  { kind: "TrafficPolicy", plural: "trafficpolicies" },
  { kind: "MeshConfig", plural: "meshconfigs" },
];

export function pluralOf(kind) {
  const found = KINDS.find((k) => k.kind === kind);
  if (!found) throw new Error(`unknown kind ${kind}`);
  return found.plural;
}

// Headers every request carries; the security work sets e.g. Authorization or X-CSRF-Token.
export const authHeaders = {};

/** An error from the API, carrying the protocol's error body (status, reason, field, errors). */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** The one fetch of the dashboard. Returns the raw Response for streams. */
export async function request(method, path, { body, signal } = {}) {
  const headers = { Accept: "application/json", ...authHeaders };
  const init = { method, headers, signal, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(path, init);
}

/** A JSON call: the parsed body, or an ApiError with the protocol's error body. */
export async function call(method, path, body) {
  const response = await request(method, path, { body });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { message: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const listKind = (kind) => call("GET", `/api/v1/${pluralOf(kind)}`);
export const listProxies = () => call("GET", "/api/v1/proxies");

export function resourcePath(kind, namespace, name) {
  const ns = encodeURIComponent(namespace);
  return `/api/v1/namespaces/${ns}/${pluralOf(kind)}/${encodeURIComponent(name)}`;
}

export const putResource = (doc) =>
  call("PUT", resourcePath(doc.kind, doc.metadata.namespace || "default", doc.metadata.name), doc);

export const applyDocuments = (documents, dryRun) =>
  call("POST", "/api/v1/apply", { documents, dryRun });

/**
 * Follow GET /api/v1/watch as NDJSON, calling onEvent for each line. Resolves when the
 * stream ends; rejects with ApiError (e.g. 410 Gone) or when `signal` aborts.
 */
export async function followWatch(fromRevision, onEvent, signal, onOpen) {
  const response = await request("GET", `/api/v1/watch?fromRevision=${fromRevision}`, { signal });
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    throw new ApiError(response.status, body);
  }
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (!line) continue;
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        continue; // a torn or foreign line must not stop the stream
      }
      onEvent(event);
    }
  }
}
