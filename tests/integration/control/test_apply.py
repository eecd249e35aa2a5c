"""Server-side apply and multi-delete: actions, all-or-nothing, every error, warnings."""

from __future__ import annotations

from typing import Any

from controlkit import Api, route, service


def policy(name: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "TrafficPolicy",
        "metadata": {"name": name},
        "spec": {"targetRefs": [{"name": target}]},
    }


async def test_created_configured_unchanged(api: Api) -> None:
    status, out = await api.apply(service("reviews"), service("ratings"))
    assert status == 200
    assert [r["action"] for r in out["results"]] == ["created", "created"]
    assert out["revision"] == 1 and out["warnings"] == []
    status, out = await api.apply(service("reviews", protocol="HTTP2"), service("ratings"))
    assert [r["action"] for r in out["results"]] == ["configured", "unchanged"]
    assert out["results"][0]["resourceVersion"] == "2"
    assert out["results"][1]["resourceVersion"] == "1"
    assert out["revision"] == 2
    _, got = await api.call("GET", "/api/v1/namespaces/default/services/reviews")
    assert got["metadata"]["generation"] == 2
    status, out = await api.apply(service("reviews", protocol="HTTP2"))
    assert out["results"][0]["action"] == "unchanged" and out["revision"] == 2


async def test_dry_run_writes_nothing(api: Api) -> None:
    status, out = await api.apply(service("reviews"), dryRun=True)
    assert status == 200 and out["dryRun"] is True
    assert out["results"][0]["action"] == "created"
    status, _ = await api.call("GET", "/api/v1/namespaces/default/services/reviews")
    assert status == 404


async def test_every_error_reported_and_nothing_applied(api: Api) -> None:
    bad_weights = route("r1", "reviews", [{"name": "reviews", "weight": -1}])
    all_zero = route("r2", "reviews", [{"name": "a", "weight": 0}, {"name": "b", "weight": 0}])
    unknown_field = service("ok")
    unknown_field["spec"]["colour"] = "blue"
    wrong_type = service("typed", ports="eighty")
    status, err = await api.apply(
        service("fine"),
        bad_weights,
        all_zero,
        unknown_field,
        wrong_type,
        {"apiVersion": "gossamer.dev/v1", "kind": "Widget", "metadata": {"name": "w"}},
        service("Not_DNS"),
        service("fine"),  # duplicate in one apply
        "not a mapping",
    )
    assert status == 422 and err["reason"] == "Invalid"
    where = [(e["document"], e["field"]) for e in err["errors"]]
    assert ("HTTPRoute default/r1", "spec.rules[0].backendRefs[0].weight") in where
    assert ("HTTPRoute default/r2", "spec.rules[0]") in where
    assert ("Service default/ok", "spec.colour") in where
    assert ("Service default/typed", "spec.ports") in where
    assert ("Widget default/w", "kind") in where
    assert ("Service default/Not_DNS", "metadata.name") in where
    assert ("Service default/fine", "metadata.name") in where  # the duplicate
    assert ("document 9", "") in where
    assert err["field"] == err["errors"][0]["field"]
    assert err["message"] == f"{len(err['errors'])} error(s) in 9 document(s)"
    weight_error = next(e for e in err["errors"] if e["field"].endswith("weight"))
    assert weight_error["value"] == -1
    _, listed = await api.call("GET", "/api/v1/services")
    assert listed["items"] == []  # not even the valid one


async def test_missing_service_refs_are_warnings_written_to_status(api: Api) -> None:
    status, out = await api.apply(
        service("reviews"),
        route("reviews", "reviews", [{"name": "reviews"}, {"name": "ghost", "namespace": "shop"}]),
        policy("p", "phantom"),
    )
    assert status == 200
    assert len(out["warnings"]) == 2
    assert any(
        "shop/ghost" in w and w.startswith("HTTPRoute default/reviews") for w in out["warnings"]
    )
    assert any("default/phantom" in w for w in out["warnings"])
    _, got = await api.call("GET", "/api/v1/namespaces/default/httproutes/reviews")
    assert len(got["status"]["warnings"]) == 1
    # The service appearing (through an instance) clears the warning on the next apply.
    await api.call(
        "POST",
        "/api/v1/proxies/ghost-1/register",
        {"service": "ghost", "namespace": "shop", "address": "127.0.0.1", "port": 1},
    )
    status, out = await api.apply(
        route("reviews", "reviews", [{"name": "reviews"}, {"name": "ghost", "namespace": "shop"}])
    )
    assert out["warnings"] == [] and out["results"][0]["action"] == "configured"
    _, got = await api.call("GET", "/api/v1/namespaces/default/httproutes/reviews")
    assert "warnings" not in got["status"]
    assert got["metadata"]["generation"] == 1  # status changed, spec did not


async def test_bad_apply_requests(api: Api) -> None:
    status, err = await api.call("POST", "/api/v1/apply", {"docs": []})
    assert status == 400
    status, err = await api.apply(service("a"), dryRun="yes")
    assert status == 400
    status, err = await api.apply(service("a"), waitSeconds=-1)
    assert status == 400 and "waitSeconds" in err["message"]
    async with api.session.post(api.base + "/api/v1/apply", data=b'{"documents": [') as resp:
        assert resp.status == 400 and (await resp.json())["reason"] == "BadRequest"
    big = b'{"documents": ["' + b"x" * (8 * 1024 * 1024) + b'"]}'
    async with api.session.post(api.base + "/api/v1/apply", data=big) as resp:
        assert resp.status == 413 and (await resp.json())["reason"] == "PayloadTooLarge"


async def test_multi_delete_is_all_or_nothing(api: Api) -> None:
    await api.apply(service("a"), service("b"))
    status, err = await api.call(
        "POST",
        "/api/v1/delete",
        {
            "documents": [
                {"kind": "Service", "metadata": {"name": "a"}},
                {"kind": "svc", "metadata": {"name": "ghost"}},
            ]
        },
    )
    assert status == 404 and "Service default/ghost" in err["message"]
    assert err["errors"][0]["document"] == "Service default/ghost"
    _, listed = await api.call("GET", "/api/v1/services")
    assert len(listed["items"]) == 2
    status, out = await api.call(
        "POST",
        "/api/v1/delete",
        {
            "documents": [
                {"kind": "Service", "metadata": {"name": "a"}},
                {"kind": "services", "metadata": {"name": "b", "namespace": "default"}},
            ]
        },
    )
    assert status == 200 and [r["name"] for r in out["results"]] == ["a", "b"]
    _, listed = await api.call("GET", "/api/v1/services")
    assert listed["items"] == []
    status, err = await api.call("POST", "/api/v1/delete", {"documents": [{"kind": "Widget"}]})
    assert status == 422 and err["errors"][0]["field"] == "kind"


async def test_concurrent_applies_to_one_resource_all_land(api: Api) -> None:
    import asyncio

    await api.apply(service("reviews"))
    protocols = ["HTTP", "HTTP2", "TCP", "GRPC", "HTTP2"]
    answers = await asyncio.gather(
        *(
            api.apply(service("reviews", ports=[{"port": 80 + i, "protocol": p}]))
            for i, p in enumerate(protocols)
        )
    )
    assert [status for status, _ in answers] == [200] * len(protocols)
    revisions = sorted(out["revision"] for _, out in answers)
    assert len(set(revisions)) == len(protocols)  # each one a write of its own
    _, got = await api.call("GET", "/api/v1/namespaces/default/services/reviews")
    assert got["metadata"]["generation"] == 1 + len(protocols)


async def test_bulk_apply_reads_in_bulk_and_reports_each_action(api: Api) -> None:
    docs = [service(f"svc-{i:03d}") for i in range(100)]
    status, out = await api.apply(*docs)
    assert status == 200 and {r["action"] for r in out["results"]} == {"created"}
    docs[7] = service("svc-007", protocol="TCP")
    status, out = await api.apply(*docs, service("extra"))
    actions = [r["action"] for r in out["results"]]
    assert actions.count("unchanged") == 99
    assert actions[7] == "configured" and actions[100] == "created"
