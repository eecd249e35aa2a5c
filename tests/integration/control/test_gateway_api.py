"""The gateway's long-poll endpoint on a real control plane: answers, waits, replicas."""

from __future__ import annotations

import asyncio
from typing import Any

from controlkit import Api

GATEWAY = {
    "apiVersion": "gossamer.dev/v1", "kind": "Gateway", "metadata": {"name": "edge"},
    "spec": {"listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}]},
}  # fmt: skip
SECRET = {
    "apiVersion": "gossamer.dev/v1", "kind": "Secret", "metadata": {"name": "tls"},
    "spec": {"cert": "CERT-PEM", "key": "PRIVATE-KEY-PEM"},
}  # fmt: skip


def route(name: str, host: str) -> dict[str, Any]:
    return {
        "apiVersion": "gossamer.dev/v1", "kind": "HTTPRoute", "metadata": {"name": name},
        "spec": {"parentRefs": [{"kind": "Gateway", "name": "edge"}], "hostnames": [host],
                 "rules": [{"backendRefs": [{"name": "reviews"}]}]},
    }  # fmt: skip


def path(proxy: str, known: str = "", wait: float = 0, name: str = "edge") -> str:
    return (
        f"/api/v1/proxies/{proxy}/gateway?namespace=default&name={name}&known={known}&wait={wait}"
    )


async def test_view_long_poll_and_replicas(api: Api) -> None:
    status, body = await api.call("GET", path("edge-1"))
    assert status == 404 and "edge" in body["message"]
    assert (await api.call("GET", path("edge-1", name="Not_A_Label")))[0] == 400
    bad_wait = "/api/v1/proxies/edge-1/gateway?namespace=default&name=edge&wait=soon"
    assert (await api.call("GET", bad_wait))[0] == 400
    assert (await api.apply(GATEWAY, SECRET, route("api", "api.example.com")))[0] == 200
    status, first = await api.call("GET", path("edge-1"))
    assert status == 200 and first["view"]["services"] == ["default/reviews"]
    assert list(first["view"]["listeners"][0]["hosts"]) == ["api.example.com"]
    # Nothing changed: the poll waits, then says so.
    status, same = await api.call("GET", path("edge-1", first["hash"], 0.3))
    assert same == {"hash": first["hash"], "unchanged": True}
    # A change during the wait answers it at once with the new view.
    poll = asyncio.ensure_future(api.call("GET", path("edge-1", first["hash"], 10)))
    await asyncio.sleep(0)  # let the poll start before the change (it would answer anyway)
    assert (await api.apply(route("shop", "shop.example.com")))[0] == 200
    async with asyncio.timeout(5):
        status, changed = await poll
    assert changed["hash"] != first["hash"]
    assert sorted(changed["view"]["listeners"][0]["hosts"]) == [
        "api.example.com",
        "shop.example.com",
    ]
    # A second replica polling: both views count two.
    status, other = await api.call("GET", path("edge-2"))
    assert other["view"]["replicas"] == 2
    status, again = await api.call("GET", path("edge-1", changed["hash"]))
    assert again["view"]["replicas"] == 2
    # The Secret's key is served to gateways only, never in resource reads.
    status, secret = await api.call("GET", "/api/v1/namespaces/default/secrets/tls")
    assert status == 200 and secret["spec"]["key"] == "<redacted>"
    assert secret["spec"]["cert"] == "CERT-PEM"


async def test_redacted_secret_round_trips_without_losing_the_key(api: Api) -> None:
    assert (await api.apply(SECRET))[0] == 200
    status, shown = await api.call("GET", "/api/v1/namespaces/default/secrets/tls")
    assert status == 200 and shown["spec"]["key"] == "<redacted>"
    # `get -o yaml | apply -f -`: the redacted document applies as unchanged, key kept.
    status, body = await api.apply(shown)
    assert status == 200 and body["results"][0]["action"] == "unchanged"
    stored = await api.server.store.get("Secret", "default", "tls")
    assert stored is not None and stored.value["spec"]["key"] == "PRIVATE-KEY-PEM"
    # A new Secret cannot be made from a redacted read.
    copy = {**shown, "metadata": {"name": "tls-copy"}}
    status, error = await api.apply(copy)
    assert status == 422 and error["field"] == "spec.key" and "private key" in error["message"]
    assert await api.server.store.get("Secret", "default", "tls-copy") is None
