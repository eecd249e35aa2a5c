"""`gossamer explain authz`: run the sidecar's own authorization code on a service's entry.

    gossamer explain authz --from frontend --to reviews GET /admin [-H k:v] [-n ns]

The destination's compiled entry (with ENTRY["authz"]) comes from the control plane's
`GET /api/v1/snapshot/namespaces/{ns}/services/{name}`; the path is normalised with
proxy/paths.py and decided with proxy/authz.py, exactly as the inbound sidecar does. Policies
may select instances by label: each distinct label set of the service's endpoints gets its
own answer (or the labels given with --labels).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gossamer.cli.remote import EXIT_FAILED, ControlOption, NamespaceOption, control_client, note
from gossamer.cli.traffic import explain_app
from gossamer.proxy.authz import SCHEME, evaluate, parse_policies
from gossamer.proxy.paths import PathError, normalise_target

DEFAULT_TRUST_DOMAIN = "cluster.local"


def principal_for(source: str | None, namespace: str, trust_domain: str) -> str | None:
    """--from: a SPIFFE ID as is, "ns/name" or a bare name (in `namespace`); None: no identity."""
    if not source:
        return None
    if source.startswith(SCHEME):
        return source
    ns, _, name = source.rpartition("/")
    return f"{SCHEME}{trust_domain}/ns/{ns or namespace}/sa/{name}"


def explain_authz(
    wire: dict[str, Any],
    key: str,
    principal: str | None,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    labels: dict[str, str] | None = None,
) -> tuple[list[str], bool]:
    """(lines for people, allowed for every instance considered). Pure."""
    entry = (wire.get("services") or {}).get(key)
    if not isinstance(entry, dict):
        return [f"{key}: not in the control plane's view"], False
    lines = [f"to {key} from {principal or '(no identity: plaintext)'}"]
    mtls = entry.get("mtls", "STRICT")
    if principal is None and mtls == "STRICT":
        lines.append("mTLS STRICT: a plaintext caller is refused before any policy is checked")
        return lines, False
    try:
        forwarded, path = normalise_target(target.encode("utf-8"))
    except (PathError, UnicodeEncodeError) as exc:
        return [*lines, f"DENIED 400 bad_path: {exc}"], False
    if forwarded.decode() != target:
        lines.append(f"path normalised: {target} -> {forwarded.decode()} (what the app gets)")
    policies = parse_policies(entry.get("authz"), f"services[{key!r}].authz")
    lines.append(
        f"{len(policies)} AuthorizationPolicy(ies) select the service: "
        + (", ".join(f"{p.name} ({p.action})" for p in policies) or "none")
    )
    wire_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    label_sets = [labels] if labels is not None else _label_sets(entry)
    allowed_all = True
    for instance_labels in label_sets:
        d = evaluate(policies, instance_labels, principal, method.upper(), path, wire_headers)
        who = ",".join(f"{k}={v}" for k, v in sorted(instance_labels.items())) or "(no labels)"
        verdict = "ALLOWED" if d.allowed else "DENIED 403 rbac_denied"
        lines.append(f"instances {who}: {verdict}: {d.reason}")
        allowed_all &= d.allowed
    return lines, allowed_all


def _label_sets(entry: dict[str, Any]) -> list[dict[str, str]]:
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for endpoint in entry.get("endpoints") or ():
        found = dict(endpoint.get("labels") or {})
        seen.setdefault(tuple(sorted(found.items())), found)
    return list(seen.values()) or [{}]


def _pairs(raw: list[str] | None, sep: str, hint: str) -> list[tuple[str, str]]:
    out = []
    for item in raw or []:
        key, found, value = item.partition(sep)
        if not found or not key.strip():
            raise typer.BadParameter(f"{item!r} is not 'name{sep}value'", param_hint=hint)
        out.append((key.strip(), value.strip()))
    return out


@explain_app.command("authz")
def explain_authz_cmd(
    method: Annotated[str, typer.Argument(help="HTTP method, e.g. GET.")],
    target: Annotated[str, typer.Argument(help="Path with optional query, e.g. /admin?x=1.")],
    to: Annotated[str, typer.Option("--to", help="Destination service, or namespace/name.")],
    source: Annotated[
        str | None,
        typer.Option("--from", help="Caller: service, namespace/service or a spiffe:// ID."),
    ] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", help="'Name: value' (repeat).")
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Destination instance labels, k=v,k2=v2.")
    ] = None,
    trust_domain: Annotated[
        str | None, typer.Option("--trust-domain", help="For --from names (default: the mesh's).")
    ] = None,
    namespace: NamespaceOption = "default",
    control: ControlOption = None,
) -> None:
    """Whether the destination's sidecar would let a request through, and which policy decided."""
    ns, _, name = to.rpartition("/")
    ns = ns or namespace
    given = dict(_pairs(labels.split(",") if labels else None, "=", "'--labels'"))
    with control_client(control, not_found_hint="list services with `gossamer services`") as client:
        wire = client.service_snapshot(ns, name)
    domain = trust_domain or (wire.get("mesh") or {}).get("trustDomain") or DEFAULT_TRUST_DOMAIN
    lines, allowed = explain_authz(
        wire,
        f"{ns}/{name}",
        principal_for(source, namespace, str(domain)),
        method,
        target,
        _pairs(header, ":", "'-H'"),
        given if labels else None,
    )
    for line in lines:
        typer.echo(line)
    if not allowed:
        note("the request would be refused")
        raise typer.Exit(EXIT_FAILED)
