"""REST CRUD, list with labelSelector, conflicts, system-owned fields, the watch stream."""

from __future__ import annotations

import json

from controlkit import Api, route, service

SVC = "/api/v1/namespaces/default/services"


async def test_create_get_replace_delete(api: Api) -> None:
    status, created = await api.call("POST", SVC, service("reviews", labels={"team": "a"}))
    assert status == 201
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["resourceVersion"] == "1"
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert created["status"] == {}

    status, got = await api.call("GET", SVC + "/reviews")
    assert status == 200 and got == created

    doc = service("reviews", protocol="HTTP2")
    doc["metadata"]["resourceVersion"] = "1"
    doc["metadata"]["uid"] = "forged"
    doc["status"] = {"forged": True}
    status, replaced = await api.call("PUT", SVC + "/reviews", doc)
    assert status == 200
    assert replaced["metadata"]["generation"] == 2
    assert replaced["metadata"]["resourceVersion"] == "2"
    assert replaced["metadata"]["uid"] == meta["uid"]  # the system owns it
    assert replaced["status"] == {}
    assert replaced["spec"]["protocol"] == "HTTP2"

    status, deleted = await api.call("DELETE", SVC + "/reviews")
    assert status == 200 and deleted["metadata"]["name"] == "reviews"
    status, err = await api.call("GET", SVC + "/reviews")
    assert status == 404 and err["reason"] == "NotFound"


async def test_conflicts_and_missing(api: Api) -> None:
    assert (await api.call("POST", SVC, service("reviews")))[0] == 201
    status, err = await api.call("POST", SVC, service("reviews"))
    assert status == 409 and err["reason"] == "Conflict" and "already exists" in err["message"]
    stale = service("reviews", protocol="TCP")
    stale["metadata"]["resourceVersion"] = "999"
    status, err = await api.call("PUT", SVC + "/reviews", stale)
    assert status == 409 and "resourceVersion 1" in err["message"]
    status, err = await api.call("PUT", SVC + "/ghost", service("ghost"))
    assert status == 404
    status, err = await api.call("DELETE", SVC + "/ghost")
    assert status == 404 and err["status"] == 404


async def test_unchanged_put_keeps_generation(api: Api) -> None:
    await api.call("POST", SVC, service("reviews"))
    status, same = await api.call("PUT", SVC + "/reviews", service("reviews"))
    assert status == 200 and same["metadata"]["generation"] == 1
    assert same["metadata"]["resourceVersion"] == "1"
    labelled = service("reviews")
    labelled["metadata"]["labels"] = {"team": "b"}
    status, relabelled = await api.call("PUT", SVC + "/reviews", labelled)
    assert relabelled["metadata"]["generation"] == 1  # labels are not spec
    assert relabelled["metadata"]["resourceVersion"] == "2"


async def test_list_with_label_selector_and_namespaces(api: Api) -> None:
    a = service("a")
    a["metadata"]["labels"] = {"team": "x", "tier": "web"}
    b = service("b", namespace="shop")
    b["metadata"]["labels"] = {"team": "x"}
    c = service("c")
    await api.apply(a, b, c)
    status, listed = await api.call("GET", "/api/v1/services?labelSelector=team=x")
    assert status == 200 and listed["kind"] == "List" and listed["revision"] == 1
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b"]
    _, listed = await api.call("GET", "/api/v1/services?labelSelector=team=x,tier=web")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    _, listed = await api.call("GET", "/api/v1/namespaces/shop/services")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["b"]
    status, err = await api.call("GET", "/api/v1/services?labelSelector=team")
    assert status == 400 and err["reason"] == "BadRequest"
    status, err = await api.call("GET", "/api/v1/widgets")
    assert status == 404 and "known" in err["message"]


async def test_bad_bodies_get_precise_errors(api: Api) -> None:
    async with api.session.post(api.base + SVC, data=b"{not json") as resp:
        assert resp.status == 400
        assert (await resp.json())["reason"] == "BadRequest"
    status, err = await api.call("POST", SVC, [1, 2])
    assert status == 400 and "JSON object" in err["message"]
    status, err = await api.call("POST", SVC, service("Bad_Name", port=1))
    assert status == 422 and err["reason"] == "Invalid"
    fields = {e["field"] for e in err["errors"]}
    assert fields == {"metadata.name", "spec.port"}
    assert err["field"] in fields
    status, err = await api.call("POST", SVC, service("x", namespace="other"))
    assert status == 400 and "does not match" in err["message"]
    big = b'{"x": "' + b"a" * (9 * 1024 * 1024) + b'"}'
    async with api.session.post(api.base + SVC, data=big) as resp:
        assert resp.status == 413
        body = await resp.json()
        assert body["reason"] == "PayloadTooLarge"
    status, err = await api.call("GET", "/nope")
    assert status == 404 and err["reason"] == "NotFound"
    status, err = await api.call("PATCH", "/healthz")
    assert status == 405 and "reason" in err


async def test_route_with_missing_backend_gets_status_warning(api: Api) -> None:
    doc = route("reviews", "reviews", [{"name": "ghost"}])
    status, created = await api.call("POST", "/api/v1/namespaces/default/httproutes", doc)
    assert status == 201
    [warning] = created["status"]["warnings"]
    assert "default/ghost" in warning and "spec.rules[0].backendRefs[0]" in warning
    await api.call("POST", SVC, service("ghost"))
    status, fixed = await api.call("PUT", "/api/v1/namespaces/default/httproutes/reviews", doc)
    assert "warnings" not in fixed["status"]


async def test_watch_streams_changes_in_order(api: Api) -> None:
    await api.call("POST", SVC, service("a"))
    url = api.base + "/api/v1/watch?fromRevision=0&kinds=Service"
    async with api.session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/x-ndjson")
        first = json.loads(await resp.content.readline())
        assert first["type"] == "PUT" and first["revision"] == 1
        assert first["object"]["metadata"]["resourceVersion"] == "1"
        await api.call("POST", "/api/v1/namespaces/default/httproutes", route("r", "a", []))
        await api.call("DELETE", SVC + "/a")
        second = json.loads(await resp.content.readline())
        assert second["type"] == "DELETE" and second["revision"] == 3  # the route is filtered out
        assert second["object"]["metadata"]["name"] == "a"


async def test_watch_of_a_compacted_revision_is_gone(api: Api) -> None:
    for name in ("a", "b", "c"):
        await api.call("POST", SVC, service(name))
    await api.server.store.compact(3)
    status, err = await api.call("GET", "/api/v1/watch?fromRevision=0")
    assert status == 410 and err["reason"] == "Gone"
    status, err = await api.call("GET", "/api/v1/watch?fromRevision=x")
    assert status == 400
    status, err = await api.call("GET", "/api/v1/watch?kinds=Widget")
    assert status == 400 and "unknown kind" in err["message"]


async def test_discovery_health_openapi_version(api: Api) -> None:
    assert await api.call("GET", "/healthz") == (200, {"status": "ok"})
    status, ready = await api.call("GET", "/readyz")
    assert status == 200 and ready["status"] == "ready"
    assert await api.call("GET", "/api/v1/version") == (200, {"version": "0.1.0", "protocols": [1]})
    status, spec = await api.call("GET", "/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1")
    async with api.session.get(api.base + "/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"  # the dashboard
    assert "HTTPRouteSpec" in spec["components"]["schemas"]
    assert "post" in spec["paths"]["/api/v1/namespaces/{ns}/httproutes"]
    assert "/api/v1/proxies/{id}/stream" in spec["paths"]


async def test_openapi_describes_every_route_the_server_serves(api: Api) -> None:
    from gossamer.model import KINDS

    _, spec = await api.call("GET", "/openapi.json")
    assert api.server.app is not None
    served = set()
    for resource_route in api.server.app.router.routes():
        method = resource_route.method.lower()
        if method == "head":
            continue
        path = resource_route.resource.canonical if resource_route.resource else ""
        if path == "/" or path.startswith("/ui/"):
            continue  # the dashboard's files, not API
        paths = (
            [path.replace("{plural}", i.plural) for i in KINDS.values()]
            if "{plural}" in path
            else [path]
        )
        served.update((method, p) for p in paths)
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert served == documented


async def test_openapi_refs_all_resolve(api: Api) -> None:
    _, spec = await api.call("GET", "/openapi.json")
    refs: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    schemas = spec["components"]["schemas"]
    assert refs and all(r.startswith("#/components/schemas/") for r in refs)
    assert {r.rsplit("/", 1)[1] for r in refs} <= set(schemas)
