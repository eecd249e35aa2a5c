"""`gossamer token`, `gossamer ca`, `gossamer identity`, `gossamer check`: credentials, the
mesh CA and the workload certificates in use."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from gossamer.cli.output import list_items, parse_time, render_table, to_json
from gossamer.cli.remote import ControlOption, control_client, fail, note

OutputOption = Annotated[str, typer.Option("--output", "-o", help="table or json.")]
ROTATION_STEPS = ("begin", "switch", "finish")
NEAR_EXPIRY = 0.2  # a certificate in its last 20 % of life is "near expiry"


def parse_ttl(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    if not number.isdigit() or int(number) <= 0:
        raise typer.BadParameter(f"{text!r}: use e.g. 30m, 1h, 7d", param_hint="'--ttl'")
    return int(number) * units[unit]


def _remaining(value: Any, now: datetime) -> str:
    when = parse_time(value)
    if when is None:
        return "-"
    seconds = (when - now).total_seconds()
    if seconds <= 0:
        return "expired"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def register(app: typer.Typer) -> None:
    token_app = typer.Typer(help="Bootstrap tokens for sidecars and operator credentials.")
    ca_app = typer.Typer(help="The mesh CA: trust bundle, expiry, root rotation.")
    app.add_typer(token_app, name="token")
    app.add_typer(ca_app, name="ca")

    @token_app.command("create")
    def token_create(
        service: str | None = typer.Option(None, help="A sidecar token for this service."),
        namespace: str = typer.Option("default", "--namespace", "-n"),
        operator: str | None = typer.Option(None, help="A named operator credential."),
        role: str = typer.Option("viewer", help="Operator role: admin | viewer."),
        ttl: str = typer.Option("1h", help="Lifetime, e.g. 30m, 1h, 7d."),
        control: ControlOption = None,
    ) -> None:
        """Create a token; its text is printed once (stdout) and never stored."""
        if (service is None) == (operator is None):
            raise typer.BadParameter("give exactly one of --service or --operator")
        if role not in ("admin", "viewer"):
            raise typer.BadParameter("must be admin or viewer", param_hint="'--role'")
        request: dict[str, Any] = {"ttlSeconds": parse_ttl(ttl)}
        if service is not None:
            request.update(service=service, namespace=namespace)
        else:
            request.update(operator=operator, role=role)
        with control_client(control) as client:
            answer = client.create_token(request)
        who = (
            f"sidecars of {answer['namespace']}/{answer['name']}"
            if answer["role"] == "proxy"
            else f"operator {answer['name']} ({answer['role']})"
        )
        note(f"token {answer['id']} for {who}, expires {answer['expiresAt']}; shown only now")
        typer.echo(answer["token"])

    @token_app.command("list")
    def token_list(control: ControlOption = None, output: OutputOption = "table") -> None:
        """Tokens the control plane accepts (ids and scopes; never the secrets)."""
        with control_client(control) as client:
            listing = client.tokens()
        if output == "json":
            typer.echo(to_json(listing), nl=False)
            return
        rows = [
            [
                t["id"],
                t["role"],
                f"{t['namespace']}/{t['name']}" if t["namespace"] else t["name"],
                t["expiresAt"],
            ]
            for t in list_items(listing)
        ]
        render_table(["ID", "ROLE", "FOR", "EXPIRES"], rows, sys.stdout)

    @token_app.command("revoke")
    def token_revoke(token_id: str, control: ControlOption = None) -> None:
        """Revoke a token by id: it is refused from the next request on."""
        with control_client(control) as client:
            client.revoke_token(token_id)
        typer.echo(f"token {token_id} revoked")

    @ca_app.command("show")
    def ca_show(control: ControlOption = None, output: OutputOption = "table") -> None:
        """Trust domain, roots in the bundle with their expiry, rotation phase."""
        with control_client(control) as client:
            ca = client.ca()
        if output == "json":
            typer.echo(to_json(ca), nl=False)
            return
        typer.echo(f"trust domain: {ca['trustDomain']}   mTLS: {ca['mtls']}   "
                   f"phase: {ca['phase']}   signer: {ca['signer']}")  # fmt: skip
        rows = [[a["fingerprint"][:23] + "…", a["subject"], a["notAfter"]] for a in ca["bundle"]]
        render_table(["ROOT", "SUBJECT", "NOT AFTER"], rows, sys.stdout)
        if ca["pending"]:
            typer.echo(f"proxies not caught up yet: {', '.join(ca['pending'])}")

    @ca_app.command("rotate")
    def ca_rotate(
        step: str | None = typer.Argument(None, help="One step only: begin | switch | finish."),
        wait: float = typer.Option(300.0, help="Seconds to wait for proxies at each step."),
        control: ControlOption = None,
    ) -> None:
        """Rotate the root without dropping traffic: a new root joins the bundle, the new
        root signs, the old root leaves; each step only once every connected proxy has the
        new bundle and (after the switch) a certificate from the new root."""
        if step is not None and step not in ROTATION_STEPS:
            raise typer.BadParameter("must be begin, switch or finish", param_hint="STEP")
        with control_client(control) as client:
            phase = client.ca()["phase"]
            if step is not None:
                steps = [step]
            else:
                start = {"stable": 0, "rotating": 1, "switched": 2}[phase]
                steps = list(ROTATION_STEPS[start:])
            for name in steps:
                _wait_caught_up(client, wait)
                client.rotate_ca(name)
                note(f"rotation: {name} done")
            _wait_caught_up(client, wait)
        typer.echo("rotation complete" if step in (None, "finish") else f"{step}: done")

    @app.command("identity")
    def identity(
        service: str = typer.Argument(..., help="The service whose certificates to show."),
        namespace: str = typer.Option("default", "--namespace", "-n"),
        control: ControlOption = None,
        output: OutputOption = "table",
    ) -> None:
        """Certificates in use by each instance of a service: SPIFFE ID, serial, expiry."""
        with control_client(control) as client:
            listing = client.identities(service, namespace)
        if output == "json":
            typer.echo(to_json(listing), nl=False)
            return
        now = datetime.now(UTC)
        rows = [
            [
                i["proxy"],
                i["spiffeId"],
                i["serial"][:16],
                i["notAfter"],
                _remaining(i["notAfter"], now),
                "current" if i["bundle"] == listing["bundleHash"] else "stale",
            ]
            for i in list_items(listing)
        ]
        render_table(["PROXY", "SPIFFE ID", "SERIAL", "NOT AFTER", "LEFT", "BUNDLE"], rows,
                     sys.stdout)  # fmt: skip

    @app.command("check")
    def check(control: ControlOption = None) -> None:
        """CA valid, clock skew, certificates near expiry, proxies on stale bundles."""
        problems: list[str] = []
        with control_client(control) as client:
            started = time.time()
            ca = client.ca()
            listing = client.identities()
            ended = time.time()
        now = datetime.now(UTC)
        for root in ca["bundle"]:
            left = _remaining(root["notAfter"], now)
            typer.echo(f"ok    root {root['fingerprint'][:23]}… valid, {left} left")
            if left == "expired":
                problems.append(f"root {root['fingerprint']} expired")
        skew = _skew(ca.get("serverTime"), started, ended)
        if skew is not None:
            typer.echo(f"{'ok  ' if abs(skew) < 30 else 'FAIL'}  clock skew {skew:+.1f}s")
            if abs(skew) >= 30:
                problems.append(f"clock skew {skew:+.1f}s with the control plane")
        ttl = float(ca.get("certTtlSeconds", 86400))
        for item in list_items(listing):
            when = parse_time(item["notAfter"])
            seconds = (when - now).total_seconds() if when else 0.0
            if seconds < ttl * NEAR_EXPIRY and item.get("connected"):
                problems.append(f"{item['proxy']}: certificate near expiry ({seconds:.0f}s left)")
            if item["bundle"] != listing["bundleHash"] and item.get("connected"):
                problems.append(f"{item['proxy']}: stale trust bundle")
        if ca["pending"]:
            problems.append(f"rotation {ca['phase']}: waiting for {', '.join(ca['pending'])}")
        for problem in problems:
            typer.echo(f"FAIL  {problem}")
        if problems:
            raise typer.Exit(1)
        typer.echo(f"ok    {len(list_items(listing))} workload certificates current")


def _skew(server_time: Any, started: float, ended: float) -> float | None:
    when = parse_time(server_time)
    if when is None:
        return None
    return when.timestamp() - (started + ended) / 2


def _wait_caught_up(client: Any, limit: float) -> None:
    deadline = time.monotonic() + limit
    while True:
        pending = client.ca()["pending"]
        if not pending:
            return
        if time.monotonic() > deadline:
            fail(f"proxies not caught up after {limit:g}s: {', '.join(pending)}")
        time.sleep(0.2)
