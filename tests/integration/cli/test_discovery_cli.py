"""`gossamer services`, `endpoints` and `proxies` against a real control plane with registered
instances and a connected proxy stream (opened here with plain HTTP, as a sidecar would)."""

from __future__ import annotations

import json

import httpx
from cli_harness import Cli


def register(http: httpx.Client, proxy_id: str, service: str, port: int, version: str) -> None:
    body = {
        "service": service,
        "namespace": "default",
        "address": "127.0.0.1",
        "port": port,
        "labels": {"version": version},
        "leaseSeconds": 60,
    }
    http.post(f"/api/v1/proxies/{proxy_id}/register", json=body).raise_for_status()


def test_services_and_endpoints_with_label_selector(cli: Cli) -> None:
    with httpx.Client(base_url=cli.control, timeout=10, headers=cli.auth_headers()) as http:
        register(http, "reviews-aaa111", "reviews", 15006, "v1")
        register(http, "reviews-bbb222", "reviews", 15007, "v2")
        register(http, "ratings-ccc333", "ratings", 15008, "v1")

    services = cli("services")
    assert services.code == 0, services.err
    rows = [line.split() for line in services.out.splitlines()]
    assert rows[0] == ["NAMESPACE", "NAME", "HEALTHY", "TOTAL", "DECLARED"]
    assert sorted(rows[1:]) == [
        ["default", "ratings", "1", "1", "no"],
        ["default", "reviews", "2", "2", "no"],
    ]

    v2 = cli("endpoints", "reviews", "-l", "version=v2", "-o", "json")
    assert v2.code == 0, v2.err
    items = json.loads(v2.out)["items"]
    assert [(e["name"], e["port"], e["labels"]) for e in items] == [
        ("reviews-bbb222", 15007, {"version": "v2"})
    ]
    table = cli("endpoints", "default/reviews")
    assert sorted(line.split()[0] for line in table.out.splitlines()[1:]) == [
        "reviews-aaa111",
        "reviews-bbb222",
    ]
    none = cli("endpoints", "reviews", "-l", "version=v9")
    assert (none.code, none.out) == (0, "")
    assert "No healthy endpoints for default/reviews matching version=v9" in none.err

    instances = cli("get", "instances", "-o", "wide")
    assert "127.0.0.1:15007" in instances.out and "version=v2" in instances.out


def test_proxies_shows_connected_proxy_and_its_acked_version(cli: Cli) -> None:
    assert cli("apply", "-f", "-", stdin=SERVICE).code == 0
    with httpx.Client(base_url=cli.control, timeout=10, headers=cli.auth_headers()) as http:
        register(http, "reviews-ddd444", "reviews", 15006, "v1")
        stream_url = "/api/v1/proxies/reviews-ddd444/stream"
        params = {"protocol": "1", "service": "reviews", "namespace": "default"}
        with http.stream("GET", stream_url, params=params) as stream:
            lines = stream.iter_lines()  # kept: dropping the iterator closes the stream
            first = json.loads(next(lines))
            assert first["type"] == "snapshot"
            before = json.loads(cli("proxies", "-o", "json").out)
            [proxy] = before["items"]
            assert proxy["id"] == "reviews-ddd444" and proxy["connected"] is True
            http.post(
                "/api/v1/proxies/reviews-ddd444/ack", json={"version": first["version"]}
            ).raise_for_status()
            table = cli("proxies")
            assert table.code == 0, table.err
            header, row = (line.split() for line in table.out.splitlines())
            assert header == [
                "ID",
                "SERVICE",
                "ACKED",
                "LATEST",
                "IN-SYNC",
                "CONNECTED",
                "LAST-SEEN",
            ]
            assert row[:6] == [
                "reviews-ddd444",
                "default/reviews",
                str(first["version"]),
                str(before["latest"]),
                "yes" if first["version"] >= before["latest"] else "no",
                "yes",
            ]


SERVICE = "apiVersion: gossamer.dev/v1\nkind: Service\nmetadata: {name: reviews}\n"


ROUTE = """\
apiVersion: gossamer.dev/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{name: reviews}]
  rules: [{backendRefs: [{name: reviews, weight: WEIGHT}]}]
"""


def test_apply_wait_names_proxies_that_did_not_ack(cli: Cli) -> None:
    assert cli("apply", "-f", "-", stdin=SERVICE).code == 0
    with httpx.Client(base_url=cli.control, timeout=10, headers=cli.auth_headers()) as http:
        register(http, "reviews-fff666", "reviews", 15006, "v1")
        params = {"protocol": "1", "service": "reviews", "namespace": "default"}
        with http.stream("GET", "/api/v1/proxies/reviews-fff666/stream", params=params) as stream:
            lines = stream.iter_lines()  # kept: dropping the iterator closes the stream
            assert json.loads(next(lines))["type"] == "snapshot"
            # The proxy never ACKs: --wait gives up after its timeout and names it.
            stuck = cli(
                "apply",
                "--wait",
                "--timeout",
                "300ms",
                "-f",
                "-",
                stdin=ROUTE.replace("WEIGHT", "1"),
            )
            assert stuck.code == 1
            assert stuck.out == "httproute.gossamer.dev/reviews created\n", "it was applied"
            assert "pending: reviews-fff666" in stuck.err
            delta = json.loads(next(lines))
            assert delta["type"] == "delta"
            http.post("/api/v1/proxies/reviews-fff666/ack", json={"version": delta["version"]})
            # Nothing new for the proxy to confirm: the wait completes at once.
            again = cli("apply", "--wait", "-f", "-", stdin=ROUTE.replace("WEIGHT", "1"))
            assert (again.code, again.out) == (0, "httproute.gossamer.dev/reviews unchanged\n")
