// Every call to the control plane goes through `request`: the session cookie rides along
// (same origin), mutating calls carry the session's CSRF token, and a 401 anywhere tells
// the shell to show the login form.

export const KINDS = [
  { kind: "Service", plural: "services" },
  { kind: "Instance", plural: "instances" },
  { kind: "HTTPRoute", plural: "httproutes" },
  { kind: "TrafficPolicy", plural: "trafficpolicies" },
  { kind: "MeshConfig", plural: "meshconfigs" },
  { kind: "Canary", plural: "canaries" },
];

export function pluralOf(kind) {
  const found = KINDS.find((k) => k.kind === kind);
  if (!found) throw new Error(`unknown kind ${kind}`);
  return found.plural;
}

// The logged-in operator: {name, role, csrfToken, auth} from /api/v1/session or login.
export const session = { name: null, role: null, csrfToken: null, auth: false };
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);
let onUnauthorized = () => {};
export const setUnauthorizedHandler = (fn) => (onUnauthorized = fn);

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
  const headers = { Accept: "application/json" };
  if (!SAFE.has(method) && session.csrfToken) headers["X-CSRF-Token"] = session.csrfToken;
  const init = { method, headers, signal, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && !path.startsWith("/api/v1/login")) onUnauthorized();
  return response;
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

/** Who is logged in (throws ApiError 401 when no one is). */
export async function loadSession() {
  Object.assign(session, await call("GET", "/api/v1/session"));
  return session;
}

export async function login(token) {
  const answer = await call("POST", "/api/v1/login", { token });
  Object.assign(session, { ...answer, auth: true });
  return session;
}

export async function logout() {
  await call("POST", "/api/v1/logout");
  Object.assign(session, { name: null, role: null, csrfToken: null });
}

export const metricsServices = (window, direction = "outbound") =>
  call("GET", `/api/v1/metrics/services?window=${window}&direction=${direction}`);
export const metricsEdges = (window) => call("GET", `/api/v1/metrics/edges?window=${window}`);

const canaryPath = (ns, name) =>
  `/api/v1/namespaces/${encodeURIComponent(ns)}/canaries/${encodeURIComponent(name)}`;
export const startCanary = (ns, name, spec) => call("POST", `${canaryPath(ns, name)}/start`, { spec });
/** command: promote | abort | pause | resume */
export const canaryCommand = (ns, name, command) => call("POST", `${canaryPath(ns, name)}/${command}`);

export const listKind = (kind) => call("GET", `/api/v1/${pluralOf(kind)}`);
export const listProxies = () => call("GET", "/api/v1/proxies");
export const listIdentities = () => call("GET", "/api/v1/identities");
export const listAudit = (limit = 100) => call("GET", `/api/v1/audit?limit=${limit}`);

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
