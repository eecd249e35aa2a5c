"""`gossamer split`, `canary` and `explain route` as an operator runs them, against a real
`gossamer control` process."""

from __future__ import annotations

import json

from cli_harness import Cli

MESH = """
apiVersion: gossamer.dev/v1
kind: Service
metadata: {name: reviews}
---
apiVersion: gossamer.dev/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{name: reviews}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x-user, value: "42"}]}]
    backendRefs: [{name: reviews, labels: {version: v3}}]
  - matches: [{path: {type: PathPrefix, value: /api}}]
    sessionPersistence: {type: Header, sessionName: x-user-id}
    backendRefs:
    - {name: reviews, labels: {version: v1}, weight: 90}
    - {name: reviews, labels: {version: v2}, weight: 10}
"""


def test_split_then_blue_green_switch_and_back(cli: Cli) -> None:
    assert cli("apply", "-f", "-", stdin=MESH).code == 0
    done = cli("split", "reviews", "v1=70", "v2=30", "--wait")
    assert done.code == 0, done.err
    assert "version=v1 70%, version=v2 30%" in done.out
    route = json.loads(cli("get", "httproute", "reviews", "-o", "json").out)
    pinned, default = route["spec"]["rules"]
    assert [r["labels"]["version"] for r in pinned["backendRefs"]] == ["v3"]
    assert [(r["labels"]["version"], r["weight"]) for r in default["backendRefs"]] == [
        ("v1", 70),
        ("v2", 30),
    ]
    assert cli("split", "reviews", "v2=100").code == 0
    assert cli("split", "reviews", "v1=100").code == 0
    bad = cli("split", "reviews", "v1=ninety")
    assert bad.code == 2 and "SUBSET=WEIGHT" in bad.err
    zero = cli("split", "reviews", "v1=0")
    assert zero.code == 2 and "sum to zero" in zero.err
    ghost = cli("split", "ghost", "v1=1")
    assert ghost.code == 1 and "does not exist" in ghost.err


def test_explain_route_names_the_rule_the_backend_and_why(cli: Cli) -> None:
    assert cli("apply", "-f", "-", stdin=MESH).code == 0
    pinned = cli("explain", "route", "reviews", "-H", "x-user: 42", "GET", "/api/reviews")
    assert "[0] default/reviews rule 0" in pinned.out and "MATCHED" in pinned.out
    assert "-> default/reviews version=v3" in pinned.out
    # No instances are running: the operator is told the request would fail, and why.
    assert "NO healthy endpoint" in pinned.out and pinned.code == 1
    sticky = cli("explain", "route", "reviews", "-H", "x-user-id: 7", "GET", "/api/reviews")
    assert "skipped, header x-user is missing" in sticky.out
    assert "rule 1" in sticky.out and "sticky on header x-user-id=7: point" in sticky.out
    again = cli("explain", "route", "reviews", "-H", "x-user-id: 7", "GET", "/api/reviews")
    assert again.out == sticky.out  # the same user lands in the same variant every time
    other = cli("explain", "route", "reviews", "GET", "/other")
    assert "no rule matches" in other.out and "404" in other.out and other.code == 1
    assert "path '/other' does not match PathPrefix '/api'" in other.out


def test_canary_start_status_abort(cli: Cli) -> None:
    assert cli("apply", "-f", "-", stdin=MESH).code == 0
    started = cli(
        "canary", "start", "reviews", "--to", "v2", "--steps", "5,25,50,100",
        "--interval", "30s", "--max-error-rate", "1%", "--max-p99", "250ms",
        "--min-requests", "100",
    )  # fmt: skip
    assert started.code == 0, started.err
    assert "Progressing" in started.out and "canary 5%" in started.out
    status = cli("canary", "status", "reviews")
    assert "step     1/4" in status.out and "p99 <= 250ms" in status.out
    assert "start" in status.out
    doc = json.loads(cli("canary", "status", "reviews", "-o", "json").out)
    assert doc["status"]["weights"] == {"baseline": 95, "canary": 5}
    aborted = cli("canary", "abort", "reviews")
    assert aborted.code == 0 and "Aborted" in aborted.out and "canary 0%" in aborted.out
    again = cli("canary", "abort", "reviews")
    assert again.code == 1 and "already Aborted" in again.err
    missing = cli("canary", "status", "ratings")
    assert missing.code == 1 and "gossamer canary start" in missing.err
    bad = cli("canary", "start", "reviews", "--to", "v2", "--steps", "50,20")
    assert bad.code == 1 and "spec.steps" in bad.err
