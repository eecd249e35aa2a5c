// The dashboard's view of the mesh: resources kept current from the watch stream, plus
// pure derivations the pages draw from. No DOM and no fetch here.

export const EVENT_LOG_LIMIT = 500;
// A proxy not heard from for this long is shown as stale.
export const STALE_PROXY_MS = 60_000;

// Who made a change, as the security work records it on the object (absent: unknown).
export const CHANGED_BY = "gossamer.dev/changed-by";
export const changedByOf = (doc) => (doc.metadata.annotations && doc.metadata.annotations[CHANGED_BY]) || null;

export const keyOf = (doc) => `${doc.metadata.namespace || "default"}/${doc.metadata.name}`;

export class MeshModel {
  constructor() {
    this.resources = new Map(); // kind -> Map("ns/name" -> document)
    this.revision = 0;
    this.events = []; // newest first
    this.proxies = { latest: 0, items: [] };
    this.audit = []; // newest first: {time, who, role, method, path, status}; null: no log
    this.identities = new Map(); // proxy id -> certificate it holds (/api/v1/identities)
    this.listeners = new Set();
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed() {
    for (const listener of this.listeners) listener(this);
  }

  /** Replace everything of one kind with a fresh listing. */
  loadListing(kind, items) {
    const byKey = new Map();
    for (const doc of items) byKey.set(keyOf(doc), doc);
    this.resources.set(kind, byKey);
  }

  /** Apply one watch line; returns false (and changes nothing) for a malformed one.
   * `log` false applies it without listing it as news (replays after a relist). */
  applyEvent(event, nowMs, log = true) {
    const doc = event && event.object;
    if (!doc || !doc.kind || !doc.metadata || typeof doc.metadata.name !== "string") return false;
    if (event.type !== "PUT" && event.type !== "DELETE") return false;
    if (!this.resources.has(doc.kind)) this.resources.set(doc.kind, new Map());
    const byKey = this.resources.get(doc.kind);
    if (event.type === "PUT") byKey.set(keyOf(doc), doc);
    else byKey.delete(keyOf(doc));
    if (Number.isInteger(event.revision)) this.revision = Math.max(this.revision, event.revision);
    if (!log) return true;
    this.events.unshift({
      kind: doc.kind,
      namespace: doc.metadata.namespace || "default",
      name: doc.metadata.name,
      type: event.type,
      revision: event.revision,
      time: nowMs,
      by: changedByOf(doc),
    });
    if (this.events.length > EVENT_LOG_LIMIT) this.events.length = EVENT_LOG_LIMIT;
    return true;
  }

  list(kind) {
    const byKey = this.resources.get(kind);
    return byKey ? [...byKey.values()].sort((a, b) => keyOf(a).localeCompare(keyOf(b))) : [];
  }

  get(kind, namespace, name) {
    const byKey = this.resources.get(kind);
    return (byKey && byKey.get(`${namespace}/${name}`)) || null;
  }
}

const refKey = (ref, defaultNamespace) => `${ref.namespace || defaultNamespace}/${ref.name}`;

/** The proxy listing entry of each proxy id. */
export function proxiesById(proxies) {
  return new Map((proxies.items || []).map((p) => [p.id, p]));
}

/** Why a proxy's config may be out of date, or null when it is current. */
export function proxyStaleness(proxy, latest, nowMs) {
  if (!proxy) return null;
  if (!proxy.connected) return "disconnected";
  const seen = Date.parse(proxy.lastSeen);
  if (Number.isFinite(seen) && nowMs - seen > STALE_PROXY_MS) return "not seen for over a minute";
  if (proxy.ackedVersion == null || proxy.ackedVersion < proxy.sentVersion) return "has not acked";
  return null;
}

/** One row per service: declared ones and those implied by instances. */
export function serviceSummaries(model, nowMs) {
  const rows = new Map();
  const row = (namespace, name) => {
    const key = `${namespace}/${name}`;
    if (!rows.has(key)) {
      rows.set(key, { namespace, name, declared: false, healthy: 0, total: 0, stale: 0, routes: 0 });
    }
    return rows.get(key);
  };
  for (const svc of model.list("Service")) row(svc.metadata.namespace, svc.metadata.name).declared = true;
  const proxies = proxiesById(model.proxies);
  for (const inst of model.list("Instance")) {
    const spec = inst.spec || {};
    if (typeof spec.service !== "string") continue;
    const r = row(inst.metadata.namespace || "default", spec.service);
    r.total += 1;
    if (healthOf(inst) !== "unhealthy") r.healthy += 1;
    if (spec.proxy && proxyStaleness(proxies.get(spec.proxy), model.proxies.latest, nowMs)) r.stale += 1;
  }
  for (const route of model.list("HTTPRoute")) {
    for (const parent of (route.spec && route.spec.parentRefs) || []) {
      const [ns, name] = refKey(parent, route.metadata.namespace || "default").split("/");
      row(ns, name).routes += 1;
    }
  }
  return [...rows.values()].sort((a, b) =>
    `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`),
  );
}

export const healthOf = (inst) => (inst.status && inst.status.health) || "healthy";

export function instancesOf(model, namespace, name) {
  return model
    .list("Instance")
    .filter((i) => (i.metadata.namespace || "default") === namespace && i.spec && i.spec.service === name);
}

/** HTTPRoutes attached to the service (parentRefs) or sending to it (backendRefs). */
export function routesOf(model, namespace, name) {
  const key = `${namespace}/${name}`;
  return model.list("HTTPRoute").filter((route) => {
    const ns = route.metadata.namespace || "default";
    const spec = route.spec || {};
    if ((spec.parentRefs || []).some((p) => refKey(p, ns) === key)) return true;
    return (spec.rules || []).some((rule) => (rule.backendRefs || []).some((b) => refKey(b, ns) === key));
  });
}

export function policiesOf(model, namespace, name) {
  const key = `${namespace}/${name}`;
  return model.list("TrafficPolicy").filter((policy) => {
    const ns = policy.metadata.namespace || "default";
    return ((policy.spec && policy.spec.targetRefs) || []).some((t) => refKey(t, ns) === key);
  });
}

/** Graph of the config: nodes are services, edges go from a route's parent to its backends. */
export function topology(model) {
  const nodes = new Set();
  for (const s of serviceSummaries(model, Date.now())) nodes.add(`${s.namespace}/${s.name}`);
  const edges = new Map();
  for (const route of model.list("HTTPRoute")) {
    const ns = route.metadata.namespace || "default";
    const spec = route.spec || {};
    for (const parent of spec.parentRefs || []) {
      if (parent.kind === "Gateway") continue;
      const from = refKey(parent, ns);
      nodes.add(from);
      for (const rule of spec.rules || []) {
        for (const backend of rule.backendRefs || []) {
          const to = refKey(backend, ns);
          nodes.add(to);
          const id = `${from}->${to}`;
          const edge = edges.get(id) || { from, to, routes: new Set() };
          edge.routes.add(`${ns}/${route.metadata.name}`);
          edges.set(id, edge);
        }
      }
    }
  }
  return { nodes: [...nodes].sort(), edges: [...edges.values()] };
}
