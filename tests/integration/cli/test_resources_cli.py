"""The real `gossamer` binary against a real `gossamer control`: apply, get, delete."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from cli_harness import Cli

MESH = """\
apiVersion: gossamer.dev/v1
kind: Service
metadata:
  name: reviews
  labels: {team: books}
spec:
  ports: [{port: 9080}]
---
apiVersion: gossamer.dev/v1
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs: [{name: reviews}]
  rules:
  - backendRefs:
    - {name: reviews, labels: {version: v1}, weight: 90}
    - {name: reviews, labels: {version: v2}, weight: 10}
"""

BROKEN = """\
apiVersion: gossamer.dev/v1
kind: Service
metadata: {name: ratings}
---
apiVersion: gossamer.dev/v1
kind: HTTPRoute
metadata: {name: ratings}
spec:
  parentRefs: [{name: ratings}]
  rules:
  - backendRefs:
    - name: ratings
      weight: -1
---
apiVersion: gossamer.dev/v1
kind: TrafficPolicy
metadata: {name: Bad_Name}
spec:
  targetRefs: [{name: ratings}]
  loadBalancer: {type: Random}
"""


def test_apply_get_delete_round_trip(cli: Cli, tmp_path: Path) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text(MESH)
    first = cli("apply", "-f", str(mesh))
    assert first.code == 0, first.err
    assert first.out.splitlines() == [
        "service.gossamer.dev/reviews created",
        "httproute.gossamer.dev/reviews created",
    ]

    table = cli("get", "routes")
    assert table.code == 0, table.err
    header, row = table.out.splitlines()
    assert header.split()[:5] == ["NAME", "PARENTS", "RULES", "BACKENDS", "WARNINGS"]
    assert row.split()[:4] == [
        "reviews",
        "reviews",
        "1",
        "reviews{version=v1}:90,reviews{version=v2}:10",
    ]

    wide = cli("get", "svc", "-A", "-l", "team=books", "-o", "wide")
    assert wide.code == 0, wide.err
    assert wide.out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert wide.out.splitlines()[1].split()[:2] == ["default", "reviews"]
    assert "team=books" in wide.out
    assert "No" not in cli("get", "svc", "-l", "team=none").out  # empty: says so on stderr
    assert "No services found" in cli("get", "svc", "-l", "team=none").err

    again = cli("apply", "-f", str(mesh))
    assert again.out.splitlines() == [
        "service.gossamer.dev/reviews unchanged",
        "httproute.gossamer.dev/reviews unchanged",
    ]
    mesh.write_text(MESH.replace("weight: 10}", "weight: 20}"))
    changed = cli("apply", "-f", str(mesh))
    assert changed.out.splitlines() == [
        "service.gossamer.dev/reviews unchanged",
        "httproute.gossamer.dev/reviews configured",
    ]
    doc = json.loads(cli("get", "httproute", "reviews", "-o", "json").out)
    assert doc["spec"]["rules"][0]["backendRefs"][1]["weight"] == 20

    deleted = cli("delete", "route", "reviews")
    assert (deleted.code, deleted.out) == (0, "httproute.gossamer.dev/reviews deleted\n")
    gone = cli("get", "route", "reviews")
    assert gone.code == 1
    assert gone.err.startswith("error: ") and "reviews" in gone.err
    assert "gossamer get httproutes -n default" in gone.err

    by_file = cli("delete", "-f", str(mesh))
    assert by_file.code == 1, "the route is already gone: all or nothing"
    assert "HTTPRoute default/reviews" in by_file.err
    assert json.loads(cli("get", "svc", "-o", "json").out)["items"] != []
    mesh.write_text(MESH.split("---")[0])
    assert cli("delete", "-f", str(mesh)).out == "service.gossamer.dev/reviews deleted\n"
    assert json.loads(cli("get", "svc", "-o", "json").out)["items"] == []


def test_get_output_pipes_back_into_apply_unchanged(cli: Cli) -> None:
    assert cli("apply", "-f", "-", stdin=MESH).code == 0
    as_yaml = cli("get", "routes", "-o", "yaml")
    docs = list(yaml.safe_load_all(as_yaml.out))
    assert [d["metadata"]["name"] for d in docs] == ["reviews"]
    assert docs[0]["metadata"]["resourceVersion"]
    back = cli("apply", "-f", "-", stdin=as_yaml.out)
    assert (back.code, back.out) == (0, "httproute.gossamer.dev/reviews unchanged\n"), back.err

    as_json = cli("get", "svc", "-o", "json")
    listing = json.loads(as_json.out)
    assert listing["kind"] == "List" and len(listing["items"]) == 1
    back = cli("apply", "-f", "-", stdin=as_json.out)
    assert (back.code, back.out) == (0, "service.gossamer.dev/reviews unchanged\n"), back.err

    one = cli("get", "svc", "reviews", "-o", "yaml")
    assert yaml.safe_load(one.out)["kind"] == "Service"


def test_apply_is_all_or_nothing_and_lists_every_error_with_its_line(
    cli: Cli, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    result = cli("apply", "-f", str(broken))
    assert result.code == 1
    assert result.out == ""
    errors = result.err.splitlines()
    assert errors[0].startswith("error: ") and "nothing was applied" in errors[0]
    listed = "\n".join(errors[1:])
    assert f"HTTPRoute default/ratings ({broken} document 2, line 13): " in listed
    assert "spec.rules[0].backendRefs[0].weight" in listed and "got -1" in listed
    assert "metadata.name" in listed and "'Bad_Name'" in listed
    assert "spec.loadBalancer.type" in listed and "'Random'" in listed
    assert "line 17" in listed and "line 20" in listed
    stored = json.loads(cli("get", "svc", "-A", "-o", "json").out)
    assert stored["items"] == [], "the valid Service must not be stored either"


def test_dry_run_reports_but_stores_nothing(cli: Cli) -> None:
    result = cli("apply", "--dry-run", "-f", "-", stdin=MESH)
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "service.gossamer.dev/reviews created (dry run)",
        "httproute.gossamer.dev/reviews created (dry run)",
    ]
    assert json.loads(cli("get", "routes", "-o", "json").out)["items"] == []


def test_apply_directory_with_wait_and_warnings(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "1-route.yaml").write_text(MESH.split("---")[1].replace("version: v2", "v: x"))
    (tmp_path / "2-policy.json").write_text(
        json.dumps(
            {
                "apiVersion": "gossamer.dev/v1",
                "kind": "TrafficPolicy",
                "metadata": {"name": "reviews"},
                "spec": {"targetRefs": [{"name": "reviews"}]},
            }
        )
    )
    result = cli("apply", "-f", str(tmp_path), "--wait", "--timeout", "5s")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "httproute.gossamer.dev/reviews created",
        "trafficpolicy.gossamer.dev/reviews created",
    ]
    # No Service named reviews exists: the server warns, the CLI shows it on stderr.
    assert "Warning: " in result.err and "reviews" in result.err
    assert "synced" in result.err


def test_yaml_syntax_error_is_reported_before_anything_is_sent(
    offline_cli: Cli, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: gossamer.dev/v1\nkind: Service\nmetadata: {name: x\n")
    result = offline_cli("apply", "-f", str(bad))
    assert result.code == 1, "a local syntax error, not an unreachable control plane"
    assert f"{bad} (line 4): invalid YAML" in result.err


def test_usage_errors_exit_2(cli: Cli, tmp_path: Path) -> None:
    unknown = cli("get", "gizmos")
    assert unknown.code == 2
    assert "unknown kind 'gizmos'" in unknown.err and "httproutes" in unknown.err
    assert cli("apply", "-f", str(tmp_path / "missing.yaml")).code == 2
    assert cli("get", "svc", "-l", "novalue").code == 2
    assert cli("get", "svc", "-o", "xml").code == 2
    assert cli("apply", "-f", "-", "--wait", "--timeout", "soon", stdin=MESH).code == 2
    bad_url = cli("services", "--control", "localhost:15010", control=False)
    assert bad_url.code == 2 and "http://" in bad_url.err


def test_unreachable_control_plane_exits_3_and_says_what_to_do(
    offline_cli: Cli, closed_port_url: str
) -> None:
    for args in (["get", "routes"], ["services"], ["proxies"], ["delete", "svc", "x"]):
        result = offline_cli(*args)
        assert result.code == 3, (args, result.err)
        assert closed_port_url in result.err
        assert "gossamer control" in result.err and "--control" in result.err
    via_env = Cli(offline_cli.control, {**offline_cli.env, "GOSSAMER_CONTROL": closed_port_url})
    result = via_env("apply", "-f", "-", stdin=MESH, control=False)
    assert result.code == 3 and closed_port_url in result.err
