"""AuthorizationPolicy on live traffic, real processes: a control plane, an echo instance
behind `gossamer run` and a client sidecar. Policies go in with `gossamer apply --wait` and
take effect on the next request; deleting them opens the path again.

Sidecars talk mTLS (STRICT by default), so the inbound sidecar knows the caller's SPIFFE ID:
the client sidecar is `spiffe://<trust domain>/ns/default/sa/client`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from helpers import GOSSAMER, Proc, Procs, http_get

DENY_ADMIN = """
apiVersion: gossamer.dev/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin}
spec:
  selector: {matchLabels: {service: echo}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin", "/admin/*"]}}]
"""

BY_CALLER = """
apiVersion: gossamer.dev/v1
kind: AuthorizationPolicy
metadata: {name: by-caller}
spec:
  selector: {matchLabels: {service: echo}}
  action: DENY
  rules:
  - from: [{source: {services: [client]}}]
    to: [{operation: {paths: ["/not-for-client"]}}]
  - from: [{source: {notPrincipals: ["*/ns/default/sa/client"]}}]
    to: [{operation: {paths: ["/client-only"]}}]
  - from: [{source: {notNamespaces: [default]}}]
    to: [{operation: {paths: ["/default-only"]}}]
"""

ALLOW_PUBLIC = """
apiVersion: gossamer.dev/v1
kind: AuthorizationPolicy
metadata: {name: public-only}
spec:
  selector: {matchLabels: {service: echo, version: v1}}
  rules:
  - to: [{operation: {paths: ["/public/*"], methods: [GET]}}]
"""


@dataclass
class Mesh:
    procs: Procs
    control: Proc
    echo: Proc
    client: Proc
    tmp: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.control.port('port')}"

    async def gossamer(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            *GOSSAMER, *args, "--control", self.url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "GOSSAMER_DATA_DIR": str(self.tmp / "control")},  # its admin token
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        return out.decode()

    async def apply(self, name: str, text: str) -> Path:
        path = self.tmp / f"{name}.yaml"
        path.write_text(text)
        await self.gossamer("apply", "-f", str(path), "--wait")
        return path

    async def get(self, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
        status, headers, body, conn = await http_get(self.client.port("outbound"), "echo", path)
        if conn is not None:
            conn[1].close()
        return status, headers, body

    async def denials(self) -> str:
        async with httpx.AsyncClient() as http:
            resp = await http.get(f"http://127.0.0.1:{self.echo.port('stats')}/metrics")
        return "\n".join(
            line for line in resp.text.splitlines() if line.startswith("gossamer_authz_denials")
        )


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    procs = Procs(tmp_path)
    try:
        control = await procs.control()
        port = control.port("port")
        echo = await procs.instance(port, "echo", "echo-1", labels="version=v1")
        client = await procs.instance(port, "client", "client", extra=["--upstream", "echo=0"])
        yield Mesh(procs, control, echo, client, tmp_path)
    finally:
        await procs.close()


async def test_policies_applied_and_deleted_take_effect_on_live_traffic(mesh: Mesh) -> None:
    status, _, body = await mesh.get("/admin")
    assert status == 200 and b'"/admin"' in body  # no policy: allowed

    deny = await mesh.apply("deny", DENY_ADMIN)
    for attack in (
        "/admin",
        "/admin/users",
        "//admin",
        "/x/%2e%2e/admin",
        "/%61dmin",
        "/admin;x=1",
    ):
        status, headers, _ = await mesh.get(attack)
        assert status == 403, attack
        assert headers[b"x-gossamer-reason"] == b"rbac_denied"
        assert headers[b"x-gossamer-policy"] == b"default/deny-admin"
    for refused in ("/x%2F..%2Fadmin", "/x/..;/admin", "/%c0%afadmin"):
        status, headers, _ = await mesh.get(refused)
        assert (status, headers[b"x-gossamer-reason"]) == (400, b"bad_path"), refused
    # The app gets the path that was checked: normalised.
    status, _, body = await mesh.get("/public/./a//b/../c?q=1")
    assert status == 200 and b'"path": "/public/a/c"' in body
    assert (await mesh.get("/ADMIN"))[0] == 200  # matching is case-sensitive

    # Source identities: the client's SPIFFE ID arrives over mTLS.
    by_caller = await mesh.apply("by-caller", BY_CALLER)
    status, headers, _ = await mesh.get("/not-for-client")
    assert status == 403 and headers[b"x-gossamer-policy"] == b"default/by-caller"
    assert (await mesh.get("/client-only"))[0] == 200
    assert (await mesh.get("/default-only"))[0] == 200
    await mesh.gossamer("delete", "-f", str(by_caller))
    await mesh.apply(
        "by-caller-other",
        BY_CALLER.replace("sa/client", "sa/frontend").replace("by-caller", "by-caller-other"),
    )
    # --wait covers every change up to the apply's revision: the delete before it too.
    assert (await mesh.get("/client-only"))[0] == 403
    assert (await mesh.get("/default-only"))[0] == 200
    await mesh.gossamer("delete", "-f", str(mesh.tmp / "by-caller-other.yaml"))

    allow = await mesh.apply("allow", ALLOW_PUBLIC)
    assert (await mesh.get("/public/page"))[0] == 200
    status, headers, _ = await mesh.get("/private")
    assert (status, headers[b"x-gossamer-reason"]) == (403, b"rbac_denied")
    assert b"x-gossamer-policy" not in headers  # no rule matched: the default deny decided
    assert (await mesh.get("/admin"))[0] == 403  # DENY still wins

    metrics = await mesh.denials()
    assert 'reason="deny_rule",policy="default/deny-admin"} 7' in metrics, metrics
    assert 'reason="deny_rule",policy="default/by-caller"} 1' in metrics, metrics
    assert 'reason="deny_rule",policy="default/by-caller-other"} 1' in metrics, metrics
    assert 'reason="no_allow_match",policy=""} 1' in metrics, metrics

    await mesh.gossamer("delete", "-f", str(deny))
    await mesh.gossamer("delete", "-f", str(allow))
    # delete has no --wait: poll the live path until the change arrives.
    async with asyncio.timeout(10):
        while (status := (await mesh.get("/admin"))[0]) != 200:
            assert status == 403
            await asyncio.sleep(0.05)
    assert (await mesh.get("/private"))[0] == 200
