"""Table columns per kind and for discovery views: documents in, header and rows out (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from gossamer.cli.output import Row, dig, format_age, format_labels, list_items

Doc = dict[str, Any]
# (header, value of one document, shown only in wide output)
Column = tuple[str, Callable[[Doc], str], bool]


def _join(values: Sequence[str]) -> str:
    return ",".join(values) if values else "<none>"


def _ref(ref: Any) -> str:
    name = str(dig(ref, "name", default="?"))
    namespace = dig(ref, "namespace")
    return f"{namespace}/{name}" if namespace else name


def _backend(ref: Any) -> str:
    labels = dig(ref, "labels", default={})
    subset = "{" + format_labels(labels) + "}" if labels else ""
    return f"{_ref(ref)}{subset}:{dig(ref, 'weight', default=1)}"


def _route_backends(doc: Doc) -> str:
    rules = dig(doc, "spec", "rules", default=[]) or []
    refs = [_backend(b) for rule in rules for b in (dig(rule, "backendRefs", default=[]) or [])]
    return _join(refs)


def _ports(doc: Doc) -> str:
    ports = dig(doc, "spec", "ports", default=[]) or []
    return _join(
        [f"{dig(p, 'port', default='?')}/{dig(p, 'protocol', default='HTTP')}" for p in ports]
    )


def _warnings(doc: Doc) -> str:
    return str(len(dig(doc, "status", "warnings", default=[]) or []))


def _str(*path: str | int, default: str = "<none>") -> Callable[[Doc], str]:
    def get(doc: Doc) -> str:
        value = dig(doc, *path)
        return default if value is None else str(value)

    return get


COLUMNS: dict[str, list[Column]] = {
    "Service": [
        ("PROTOCOL", _str("spec", "protocol", default="HTTP"), False),
        ("PORTS", _ports, False),
        ("LABELS", lambda d: format_labels(dig(d, "metadata", "labels")), True),
        ("WARNINGS", _warnings, True),
    ],
    "Instance": [
        ("SERVICE", _str("spec", "service"), False),
        (
            "ADDRESS",
            lambda d: (
                f"{dig(d, 'spec', 'address', default='?')}:{dig(d, 'spec', 'port', default='?')}"
            ),
            False,
        ),
        ("HEALTH", _str("status", "health", default="unknown"), False),
        ("APP-PORT", _str("spec", "appPort"), True),
        ("LABELS", lambda d: format_labels(dig(d, "spec", "labels")), True),
        ("PROXY", _str("spec", "proxy"), True),
    ],
    "HTTPRoute": [
        (
            "PARENTS",
            lambda d: _join([_ref(p) for p in dig(d, "spec", "parentRefs", default=[]) or []]),
            False,
        ),
        ("RULES", lambda d: str(len(dig(d, "spec", "rules", default=[]) or [])), False),
        ("BACKENDS", _route_backends, False),
        ("HOSTNAMES", lambda d: _join(dig(d, "spec", "hostnames", default=[]) or []), True),
        ("WARNINGS", _warnings, False),
    ],
    "TrafficPolicy": [
        (
            "TARGETS",
            lambda d: _join([_ref(t) for t in dig(d, "spec", "targetRefs", default=[]) or []]),
            False,
        ),
        ("LB", _str("spec", "loadBalancer", "type", default="P2CPeakEWMA"), False),
        ("CONNECT", _str("spec", "timeouts", "connect", default="5s"), True),
        ("REQUEST", _str("spec", "timeouts", "request", default="15s"), True),
        ("EJECT-AFTER", _str("spec", "outlierDetection", "consecutiveErrors", default="5"), True),
    ],
    "MeshConfig": [
        ("OUTBOUND", _str("spec", "outboundTrafficPolicy", default="ALLOW_ANY"), False),
    ],
    "AuthorizationPolicy": [
        ("ACTION", _str("spec", "action", default="ALLOW"), False),
        ("SELECTOR", lambda d: _selector(d) or "(namespace)", False),
        ("RULES", lambda d: str(len(dig(d, "spec", "rules", default=[]) or [])), False),
    ],
    "PeerAuthentication": [
        ("MODE", _str("spec", "mtls", "mode", default="STRICT"), False),
        ("SELECTOR", lambda d: _selector(d) or "(namespace)", False),
    ],
}


def _selector(doc: Doc) -> str:
    labels = dig(doc, "spec", "selector", "matchLabels", default={}) or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def resource_table(
    kind: str, items: Sequence[Doc], *, wide: bool, all_namespaces: bool, now: datetime
) -> tuple[list[str], list[Row]]:
    columns = [c for c in COLUMNS.get(kind, []) if wide or not c[2]]
    headers = (["NAMESPACE"] if all_namespaces else []) + ["NAME"]
    headers += [c[0] for c in columns] + ["AGE"]
    rows = []
    for doc in items:
        row = [str(dig(doc, "metadata", "namespace", default="default"))] if all_namespaces else []
        row.append(str(dig(doc, "metadata", "name", default="?")))
        row += [c[1](doc) for c in columns]
        row.append(format_age(dig(doc, "metadata", "creationTimestamp"), now))
        rows.append(row)
    return headers, rows


def services_table(items: Sequence[Doc]) -> tuple[list[str], list[Row]]:
    headers = ["NAMESPACE", "NAME", "HEALTHY", "TOTAL", "DECLARED"]
    rows = [
        [
            str(dig(s, "namespace", default="default")),
            str(dig(s, "name", default="?")),
            str(dig(s, "healthy", default=0)),
            str(dig(s, "total", default=0)),
            "yes" if dig(s, "declared") else "no",
        ]
        for s in items
    ]
    return headers, rows


def endpoints_table(items: Sequence[Doc]) -> tuple[list[str], list[Row]]:
    headers = ["NAME", "ADDRESS", "LABELS", "PROXY"]
    rows = [
        [
            str(dig(e, "name", default="?")),
            f"{dig(e, 'address', default='?')}:{dig(e, 'port', default='?')}",
            format_labels(dig(e, "labels")),
            str(dig(e, "proxy", default="<none>")),
        ]
        for e in items
    ]
    return headers, rows


def proxies_table(listing: Doc, now: datetime) -> tuple[list[str], list[Row]]:
    """One row per proxy; ACKED shows the version it confirmed against the mesh's latest."""
    latest = dig(listing, "latest")
    headers = ["ID", "SERVICE", "ACKED", "LATEST", "IN-SYNC", "CONNECTED", "LAST-SEEN"]
    rows = []
    for p in list_items(listing):
        acked = dig(p, "ackedVersion")
        in_sync = isinstance(acked, int) and isinstance(latest, int) and acked >= latest
        rows.append(
            [
                str(dig(p, "id", default="?")),
                f"{dig(p, 'namespace', default='default')}/{dig(p, 'service', default='?')}",
                "-" if acked is None else str(acked),
                "-" if latest is None else str(latest),
                "yes" if in_sync else "no",
                "yes" if dig(p, "connected") else "no",
                format_age(dig(p, "lastSeen"), now) + " ago" if dig(p, "lastSeen") else "never",
            ]
        )
    return headers, rows
