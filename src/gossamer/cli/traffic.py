"""`gossamer split`, `gossamer canary ...` and `gossamer explain route`."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer

from gossamer.cli.remote import (
    EXIT_FAILED,
    ControlOption,
    NamespaceOption,
    control_client,
    fail,
    note,
)

canary_app = typer.Typer(help="Automated canary analysis: shift, watch, promote or roll back.")
explain_app = typer.Typer(help="Explain what the mesh does with a request.")
_WEIGHT = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)=([0-9]+)$")
_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_PERCENT = re.compile(r"^([0-9]+(\.[0-9]+)?)%?$")

ServiceArg = Annotated[str, typer.Argument(help="Service name, or namespace/name.")]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="Wait until every affected proxy has the change.")
]


def _split_name(service: str, namespace: str) -> tuple[str, str]:
    if "/" in service:
        ns, _, name = service.partition("/")
        return ns, name
    return namespace, service


def parse_weights(values: list[str]) -> dict[str, int]:
    """["v1=90", "v2=10"] -> {"v1": 90, "v2": 10}; a usage error names the bad term."""
    out: dict[str, int] = {}
    for value in values:
        match = _WEIGHT.match(value)
        if match is None:
            raise typer.BadParameter(
                f"{value!r} is not SUBSET=WEIGHT (e.g. v1=90)", param_hint="WEIGHTS"
            )
        out[match.group(1)] = int(match.group(2))
    if not any(out.values()):
        raise typer.BadParameter("weights sum to zero: one must be positive", param_hint="WEIGHTS")
    return out


def split(
    service: ServiceArg,
    weights: Annotated[list[str], typer.Argument(help="SUBSET=WEIGHT terms, e.g. v1=90 v2=10.")],
    label: Annotated[str, typer.Option("--label", help="Label key of the subsets.")] = "version",
    route: Annotated[
        str | None, typer.Option("--route", help="HTTPRoute (default: service).")
    ] = None,
    wait: WaitOption = False,
    wait_timeout: Annotated[float, typer.Option("--wait-timeout", help="Seconds.")] = 30.0,
    namespace: NamespaceOption = "default",
    control: ControlOption = None,
) -> None:
    """Send the service's default traffic over its subsets by weight (v2=100: blue-green)."""
    ns, name = _split_name(service, namespace)
    parsed = parse_weights(weights)
    with control_client(control, timeout=10.0) as client:
        answer = client.split(
            ns, name, parsed, label=label, route=route, wait_seconds=wait_timeout if wait else None
        )
    total = sum(parsed.values())
    shares = ", ".join(f"{label}={k} {100 * w / total:.0f}%" for k, w in parsed.items())
    route_name = answer["route"]["metadata"]["name"]
    typer.echo(f"httproute {ns}/{route_name}: {shares}")
    sync = answer.get("sync")
    if sync is not None and not sync.get("complete"):
        fail("not every proxy acknowledged the change", [", ".join(sync.get("pending", []))])


def _duration(value: str, option: str) -> str:
    if not _DURATION.match(value):
        raise typer.BadParameter(f"{value!r} is not a duration like 30s or 1m", param_hint=option)
    return value


def _percent(value: str) -> float:
    match = _PERCENT.match(value.strip())
    if match is None:
        raise typer.BadParameter(
            f"{value!r} is not a percentage like 1%", param_hint="'--max-error-rate'"
        )
    return float(match.group(1))


@canary_app.command("start")
def canary_start(
    service: ServiceArg,
    to: Annotated[str, typer.Option("--to", help="Canary version (label value), e.g. v2.")],
    baseline: Annotated[str, typer.Option("--from", help="Baseline version.")] = "v1",
    steps: Annotated[str, typer.Option("--steps", help="Percent per step.")] = "5,25,50,100",
    interval: Annotated[str, typer.Option("--interval", help="Time per step.")] = "30s",
    max_error_rate: Annotated[str, typer.Option("--max-error-rate")] = "1%",
    max_p99: Annotated[str | None, typer.Option("--max-p99", help="e.g. 250ms.")] = None,
    min_requests: Annotated[int, typer.Option("--min-requests", min=1)] = 100,
    route: Annotated[
        str | None, typer.Option("--route", help="HTTPRoute (default: service).")
    ] = None,
    namespace: NamespaceOption = "default",
    control: ControlOption = None,
) -> None:
    """Start (or restart) a canary of SERVICE from --from to --to."""
    ns, name = _split_name(service, namespace)
    try:
        step_list = [int(s) for s in steps.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{steps!r} is not a list like 5,25,50,100", param_hint="'--steps'"
        ) from None
    thresholds: dict[str, Any] = {
        "maxErrorRate": _percent(max_error_rate),
        "minRequests": min_requests,
    }
    if max_p99 is not None:
        thresholds["maxP99"] = _duration(max_p99, "'--max-p99'")
    spec: dict[str, Any] = {
        "service": name,
        "baseline": {"version": baseline},
        "canary": {"version": to},
        "steps": step_list,
        "interval": _duration(interval, "'--interval'"),
        "thresholds": thresholds,
    }
    if route:
        spec["route"] = route
    with control_client(control) as client:
        doc = client.canary(ns, name, "start", spec)
    _print_status(doc)


def _canary_action(
    action: str, service: str, namespace: str, control: str | None, output: str
) -> None:
    ns, name = _split_name(service, namespace)
    hint = f"start one with `gossamer canary start {name} --to <version>`"
    with control_client(control, not_found_hint=hint) as client:
        doc = client.canary(ns, name, action)
    if output == "json":
        typer.echo(json.dumps(doc, indent=2))
    else:
        _print_status(doc)


OutputOpt = Annotated[str, typer.Option("--output", "-o", help="text or json.")]


@canary_app.command("status")
def canary_status(
    service: ServiceArg,
    output: OutputOpt = "text",
    namespace: NamespaceOption = "default",
    control: ControlOption = None,
) -> None:
    """Step, weights, measured numbers vs thresholds, and the decisions so far."""
    _canary_action("status", service, namespace, control, output)


@canary_app.command("promote")
def canary_promote(
    service: ServiceArg,
    output: OutputOpt = "text",
    namespace: NamespaceOption = "default",
    control: ControlOption = None,
) -> None:
    """Send all traffic to the canary now and end the run."""
    _canary_action("promote", service, namespace, control, output)


@canary_app.command("abort")
def canary_abort(
    service: ServiceArg,
    output: OutputOpt = "text",
    namespace: NamespaceOption = "default",
    control: ControlOption = None,
) -> None:
    """Send all traffic back to the baseline now and end the run."""
    _canary_action("abort", service, namespace, control, output)


@canary_app.command("pause")
def canary_pause(
    service: ServiceArg,
    output: OutputOpt = "text",
    namespace: NamespaceOption = "default",
    control: ControlOption = None,
) -> None:
    """Hold the current step's weights until resumed."""
    _canary_action("pause", service, namespace, control, output)


@canary_app.command("resume")
def canary_resume(
    service: ServiceArg,
    output: OutputOpt = "text",
    namespace: NamespaceOption = "default",
    control: ControlOption = None,
) -> None:
    """Continue a paused canary (its step starts over)."""
    _canary_action("resume", service, namespace, control, output)


def _fmt(stats: dict[str, Any] | None) -> str:
    if not stats or not stats.get("requests"):
        return "no requests"
    rate = stats.get("errorRate")
    p99 = stats.get("p99")
    errors = "-" if rate is None else f"{rate * 100:.2f}%"
    latency = "-" if p99 is None else f"{p99 * 1000:.1f}ms"
    return f"{stats['requests']} requests, errors {errors}, p99 {latency}"


def _print_status(doc: dict[str, Any]) -> None:
    meta, spec, status = doc["metadata"], doc["spec"], doc.get("status") or {}
    steps = status.get("steps") or spec.get("steps") or []
    step = status.get("step", -1)
    weights = status.get("weights") or {}
    typer.echo(f"canary {meta['namespace']}/{meta['name']}: {status.get('phase', 'Pending')}")
    typer.echo(
        f"  service  {spec['service']}: {_fmt_labels(spec['baseline'])} -> {_fmt_labels(spec['canary'])}"
    )
    if steps:
        typer.echo(
            f"  step     {step + 1}/{len(steps)} (steps {','.join(map(str, steps))}, every {spec.get('interval')})"
        )
    typer.echo(
        f"  weights  baseline {weights.get('baseline', 100)}%, canary {weights.get('canary', 0)}%"
    )
    measured = status.get("measured") or {}
    limits = measured.get("thresholds") or {}
    if limits:
        p99 = limits.get("maxP99")
        typer.echo(
            f"  limits   errors <= {limits['maxErrorRate'] * 100:g}%, "
            f"p99 <= {'-' if p99 is None else f'{p99 * 1000:g}ms'}, >= {limits['minRequests']} requests"
        )
        typer.echo(f"  canary   {_fmt(measured.get('canary'))}")
        typer.echo(f"  baseline {_fmt(measured.get('baseline'))}")
    if status.get("message"):
        typer.echo(f"  now      {status['message']}")
    for entry in status.get("history") or []:
        typer.echo(
            f"  {entry['time']}  {entry['action']:<8} {entry['reason']}  [canary: {_fmt(entry.get('canary'))}]"
        )


def _fmt_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@explain_app.command("route")
def explain_route_cmd(
    service: ServiceArg,
    method: Annotated[str, typer.Argument(help="HTTP method, e.g. GET.")],
    target: Annotated[str, typer.Argument(help="Path with optional query, e.g. /api?x=1.")],
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", help="'Name: value' (repeat).")
    ] = None,
    namespace: NamespaceOption = "default",
    control: ControlOption = None,
) -> None:
    """Which route rule a request matches, which backend it goes to, and why."""
    from gossamer.cli.explain import explain_route

    ns, name = _split_name(service, namespace)
    headers = []
    for raw in header or []:
        key, sep, value = raw.partition(":")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{raw!r} is not 'Name: value'", param_hint="'-H'")
        headers.append((key.strip(), value.strip()))
    if not target.startswith("/"):
        raise typer.BadParameter(f"{target!r} must start with '/'", param_hint="TARGET")
    with control_client(control, not_found_hint="list services with `gossamer services`") as client:
        wire = client.service_snapshot(ns, name)
    lines, served = explain_route(wire, f"{ns}/{name}", method, target, headers)
    for line in lines:
        typer.echo(line)
    if not served:
        note("the request would not be served")
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command()(split)
    app.add_typer(canary_app, name="canary")
    app.add_typer(explain_app, name="explain")
