"""`/tap` is for admins only: a real control plane (with its CA and credentials) and a
real sidecar process. The sidecar refuses taps without the control plane's tap secret
(401, never shown in its `/config`), the control plane refuses viewers (403), an admin's
`gossamer tap` stream carries the sidecar's request summaries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from helpers import Proc, Procs


@pytest.fixture
async def procs(tmp_path: Path) -> AsyncIterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        await p.close()


async def taps_active(http: httpx.AsyncClient, stats: int) -> float:
    text = (await http.get(f"http://127.0.0.1:{stats}/metrics")).text
    line = next(ln for ln in text.splitlines() if ln.startswith("gossamer_taps_active"))
    return float(line.split()[-1])


async def test_tap_needs_the_secret_at_the_sidecar_and_an_admin_at_the_control_plane(
    procs: Procs,
) -> None:
    control: Proc = await procs.control()
    base = f"http://127.0.0.1:{control.port('port')}"
    reviews = await procs.instance(control.port("port"), "reviews", "reviews-1")
    stats, admin_port = reviews.port("stats"), reviews.port("admin")
    async with httpx.AsyncClient(timeout=10) as http:
        # At the sidecar: no bearer, a wrong one, an operator's (admin) credential → 401.
        tap = f"http://127.0.0.1:{stats}/tap"
        assert (await http.get(tap)).status_code == 401
        wrong = {"Authorization": "Bearer not-the-secret"}
        assert (await http.get(tap, headers=wrong)).status_code == 401
        assert (await http.get(tap, headers=control.auth_headers())).status_code == 401
        config = (await http.get(f"http://127.0.0.1:{admin_port}/config")).json()
        assert config["snapshot"]["mesh"]["tapSecret"] == "<redacted>"

        # At the control plane: a viewer may read but not tap.
        made = await http.post(
            f"{base}/api/v1/tokens",
            json={"operator": "vic", "role": "viewer"},
            headers=control.auth_headers(),
        )
        viewer = {"Authorization": f"Bearer {made.json()['token']}"}
        answer = await http.get(f"{base}/api/v1/tap?service=reviews", headers=viewer)
        assert answer.status_code == 403
        assert (await http.get(f"{base}/api/v1/services", headers=viewer)).status_code == 200

        # An admin's tap opens the sidecar's with the secret and relays its summaries.
        url = f"{base}/api/v1/tap?service=reviews&limit=1&path=/tapped"
        async with http.stream("GET", url, headers=control.auth_headers()) as stream:
            assert stream.status_code == 200
            while await taps_active(http, stats) < 1:
                pass  # the control plane is opening the sidecar's tap; it answers fast
            # Through its own outbound (its inbound takes mTLS only): back to itself.
            outbound = f"http://127.0.0.1:{reviews.port('outbound')}/tapped/x"
            assert (await http.get(outbound, headers={"Host": "reviews"})).status_code == 200
            line = await anext(stream.aiter_lines())
    summary = json.loads(line)
    assert "error" not in summary, summary
    assert summary["path"] == "/tapped/x" and summary["proxy"] == reviews.ready["id"]
