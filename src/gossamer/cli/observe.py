"""`gossamer stat`, `edges`, `top`, `tap` and `prometheus-config`: what the mesh measured."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from gossamer.cli.output import OutputFormat, list_items, to_json
from gossamer.cli.remote import ControlOption, control_client, note

OutputOption = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json.")]
WindowOption = Annotated[str, typer.Option("--window", "-w", help="Sliding window: 10s up to 10m.")]


def _service_key(service: str | None) -> str | None:
    if not service:
        return None
    return service if "/" in service else f"default/{service}"


def _ms(seconds: Any) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}ms"


def _pct(rate: Any) -> str:
    return "-" if rate is None else f"{rate * 100:.2f}%"


def _golden(row: dict[str, Any]) -> list[str]:
    return [_pct(row.get("successRate")), f"{row.get('rps', 0):g}", _ms(row.get("p50")),
            _ms(row.get("p95")), _ms(row.get("p99")), str(row.get("requests", 0))]  # fmt: skip


def stat_rows(items: list[dict[str, Any]], routes: bool) -> list[list[str]]:
    """One row per service, then (indented) per subset, or per route with --routes."""
    rows = []
    for item in items:
        rows.append([item["service"], "", *_golden(item)])
        parts = item.get("routes" if routes else "subsets") or {}
        for name, part in parts.items():
            rows.append(
                ["", name or ("(default route)" if routes else "(no subset)"), *_golden(part)]
            )
    return rows


def _render(headers: list[str], rows: list[list[str]]) -> None:
    from gossamer.cli.output import render_table

    render_table(headers, rows, sys.stdout)


def stat(
    service: Annotated[str | None, typer.Argument(help="Service name or namespace/name.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every 2 s until Ctrl-C.")] = False,
    window: WindowOption = "1m",
    routes: Annotated[bool, typer.Option("--routes", help="Break down per route.")] = False,
    output: OutputOption = OutputFormat.table,
    control: ControlOption = None,
) -> None:
    """Success rate, rps and p50/p95/p99 per service (as its callers saw it)."""
    headers = ["SERVICE", "ROUTE" if routes else "SUBSET", "SUCCESS", "RPS", "P50", "P95", "P99",
               "REQUESTS"]  # fmt: skip
    with control_client(control) as client:
        while True:
            answer = client.metrics("services", window=window, service=_service_key(service))
            if output is OutputFormat.json:
                typer.echo(to_json(answer), nl=False)
            elif not list_items(answer):
                note(f"No requests in the last {window}.")
            else:
                if watch:
                    typer.echo("\x1b[H\x1b[2J", nl=False)  # clear the screen between frames
                _render(headers, stat_rows(list_items(answer), routes))
            if not watch:
                return
            try:
                time.sleep(2.0)
            except KeyboardInterrupt:
                return


def edges(
    service: Annotated[str | None, typer.Argument(help="Only edges to or from it.")] = None,
    window: WindowOption = "1m",
    output: OutputOption = OutputFormat.table,
    control: ControlOption = None,
) -> None:
    """Who calls whom: rps, success, latency, and whether mTLS protects the edge."""
    with control_client(control) as client:
        answer = client.metrics("edges", window=window, service=_service_key(service))
    if output is OutputFormat.json:
        typer.echo(to_json(answer), nl=False)
        return
    items = list_items(answer)
    if not items:
        note(f"No calls between services in the last {window}.")
        return
    rows = [[e["src"] or "(outside the mesh)", e["dst"], _pct(e.get("successRate")),
             f"{e.get('rps', 0):g}", _ms(e.get("p50")), _ms(e.get("p99")),
             "yes" if e.get("mtls") else "no"] for e in items]  # fmt: skip
    _render(["SRC", "DST", "SUCCESS", "RPS", "P50", "P99", "MTLS"], rows)


def top(
    service: Annotated[str, typer.Argument(help="Service name or namespace/name.")],
    window: WindowOption = "1m",
    output: OutputOption = OutputFormat.table,
    control: ControlOption = None,
) -> None:
    """The busiest paths called on a service right now."""
    with control_client(control) as client:
        answer = client.metrics("top", window=window, service=_service_key(service))
    if output is OutputFormat.json:
        typer.echo(to_json(answer), nl=False)
        return
    items = list_items(answer)
    if not items:
        note(f"No requests to {_service_key(service)} in the last {window}.")
        return
    _render(
        ["PATH", "REQUESTS", "RPS"],
        [[i["path"], str(i["requests"]), f"{i['rps']:g}"] for i in items],
    )


def tap_line(summary: dict[str, Any]) -> str:
    """One readable line per request summary (fields the sidecar sent; unknown ones skipped)."""
    if "error" in summary:
        return f"{summary.get('proxy', '?')}: {summary['error']}"
    parts = [str(summary.get(k)) for k in ("direction", "method", "authority", "path", "status")
             if summary.get(k) is not None]  # fmt: skip
    duration = summary.get("duration")
    if isinstance(duration, int | float):
        parts.append(_ms(duration))
    for key in ("src", "dst", "reason"):
        if summary.get(key):
            parts.append(f"{key}={summary[key]}")
    parts.append(f"proxy={summary.get('proxy', '?')}")
    return " ".join(parts)


def tap(
    service: Annotated[str, typer.Argument(help="Service name or namespace/name.")],
    path: Annotated[str | None, typer.Option("--path", help="Path prefix, e.g. /api.")] = None,
    method: Annotated[str | None, typer.Option("--method", help="e.g. GET.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="5xx or 503.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="Stop after N.")] = 100,
    output: OutputOption = OutputFormat.table,
    control: ControlOption = None,
) -> None:
    """A live stream of requests through the service's sidecars (no bodies, no secrets)."""
    with control_client(control, not_found_hint="is the service running with sidecars?") as client:
        try:
            for summary in client.tap(service=_service_key(service), path=path, method=method,
                                      status=status, limit=str(limit)):  # fmt: skip
                line = (
                    to_json(summary).replace("\n", "")
                    if output is OutputFormat.json
                    else tap_line(summary)
                )
                typer.echo(line)
        except KeyboardInterrupt:
            return


def prometheus_config(
    interval: Annotated[str, typer.Option("--interval", help="Scrape interval.")] = "15s",
    token_file: Annotated[
        str | None,
        typer.Option(
            "--token-file",
            help="File with a (viewer) credential Prometheus sends to the control plane.",
        ),
    ] = None,
    control: ControlOption = None,
) -> None:
    """A Prometheus scrape config that finds every sidecar through the control plane."""
    from gossamer.cli.common import control_url

    typer.echo(render_prometheus_config(control_url(control), interval, token_file), nl=False)


def render_prometheus_config(control: str, interval: str, token_file: str | None = None) -> str:
    import yaml

    discovery: dict[str, Any] = {
        "url": f"{control}/api/v1/prometheus/targets",
        "refresh_interval": interval,
    }
    if token_file:  # the API wants a credential; Prometheus reads it from the file
        discovery["authorization"] = {"type": "Bearer", "credentials_file": token_file}
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": "gossamer-sidecars",
                "metrics_path": "/metrics",
                "http_sd_configs": [discovery],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def register(app: typer.Typer) -> None:
    app.command()(stat)
    app.command()(edges)
    app.command()(top)
    app.command()(tap)
    app.command("prometheus-config")(prometheus_config)
