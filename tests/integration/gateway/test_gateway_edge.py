"""The gateway with real processes: a control plane, header-echo apps behind real sidecars,
`gossamer gateway` terminating real TLS, and clients that check what came through."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "proxy"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "gateway"))

from gwkit import CA, ECHO_APP, Client, get
from helpers import GOSSAMER, Proc, Procs, free_port
from jwtkit import SigningKey, hs256_with, jwks, unsigned

API_KEY = "ci-key-0123456789abcdef"
ISSUER = "https://issuer.test"


@dataclass
class Edge:
    procs: Procs
    control: Proc
    base: str
    auth: dict[str, str]
    gateway: Proc
    ca: CA
    tmp: Path
    keys: dict[str, SigningKey]
    serials: dict[str, int]

    def port(self, listener: str, gw: Proc | None = None) -> int:
        return (gw or self.gateway).port(f"listener.{listener}")

    def tls(self) -> ssl.SSLContext:
        return self.ca.client_context()


def documents(tmp: Path, keys: dict[str, SigningKey]) -> list[dict[str, Any]]:
    def doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "gossamer.dev/v1", "kind": kind, "metadata": {"name": name},
                "spec": spec}  # fmt: skip

    parent = [{"kind": "Gateway", "name": "edge"}]
    # a.example.com from files (reloaded when they change), b.example.com from a Secret.
    certs = [{"kind": "File", "cert": str(tmp / "a.crt"), "key": str(tmp / "a.key")},
             {"kind": "Secret", "name": "b-tls"}]  # fmt: skip

    def route(name: str, host: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        return doc("HTTPRoute", name, {"parentRefs": parent, "hostnames": [host], "rules": rules})

    to = lambda svc, prefix: {  # noqa: E731
        "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
        "backendRefs": [{"name": svc}],
    }
    return [
        doc("Secret", "b-tls", {"cert": (tmp / "b.crt").read_text(),
                                "key": (tmp / "b.key").read_text()}),
        doc("Service", "reviews", {"ports": [{"port": 9080}]}),
        doc("Service", "ratings", {"ports": [{"port": 9080}]}),
        doc("Gateway", "edge", {"listeners": [
            {"name": "https", "port": 8443, "protocol": "HTTPS", "hstsMaxAge": 3600,
             "tls": {"certificateRefs": certs}},
            {"name": "http", "port": 8080, "protocol": "HTTP"},
            {"name": "redirect", "port": 8081, "protocol": "HTTP", "httpsRedirect": True}]}),
        route("api", "a.example.com", [to("reviews", "/reviews"), to("ratings", "/ratings")]),
        route("wild", "*.b.example.com", [to("ratings", "/")]),
        route("exact", "exact.b.example.com", [to("reviews", "/only")]),
        route("secure", "jwt.example.com", [to("reviews", "/")]),
        route("keyed", "keys.example.com", [to("reviews", "/")]),
        route("limited", "limit.example.com", [{**to("ratings", "/"), "filters": [
            {"type": "ResponseHeaderModifier",
             "responseHeaderModifier": {"set": [{"name": "x-route", "value": "limited"}]}}]}]),
        doc("AuthPolicy", "jwt", {
            "targetRefs": [{"kind": "HTTPRoute", "name": "secure"}],
            "jwt": [{"name": "test", "issuer": ISSUER, "audiences": ["edge"],
                     "localJWKS": jwks(*keys.values()),
                     "claimToHeaders": [{"claim": "sub", "header": "x-user"}]}]}),
        doc("AuthPolicy", "keys", {
            "targetRefs": [{"kind": "HTTPRoute", "name": "keyed"}],
            "apiKey": {"keys": [{"name": "ci", "key": API_KEY}]},
            "cors": {"allowOrigins": ["https://*.app.test"], "allowHeaders": ["x-api-key"],
                     "allowMethods": ["GET", "PUT"], "maxAge": 60}}),
        doc("RateLimitPolicy", "per-user", {
            "targetRefs": [{"kind": "HTTPRoute", "name": "secure"}],
            "limits": [{"requests": 4, "per": "1m", "clientKey": {"type": "Claim", "name": "sub"}}]}),
        doc("RateLimitPolicy", "limit", {
            "targetRefs": [{"kind": "HTTPRoute", "name": "limited"}],
            "limits": [{"requests": 10, "per": "1m",
                        "clientKey": {"type": "Header", "name": "x-client"}}]}),
    ]  # fmt: skip


async def start_gateway(procs: Procs, control: Proc, tmp: Path, name: str) -> Proc:
    argv = [*GOSSAMER, "gateway", "--name", "edge", "--address", "127.0.0.1",
            "--control", f"http://127.0.0.1:{control.port('port')}",
            "--listener-port", "https=0", "--listener-port", "http=0",
            "--listener-port", "redirect=0", "--stats-port", "0",
            "--access-log", str(tmp / f"{name}-access.log"), "--report-interval", "0",
            "--max-body", "4096"]  # fmt: skip
    gw = await procs.spawn(name, argv)
    await gw.wait_ready(b"gossamer-gateway ready")
    return gw


async def start_app(procs: Procs, control: Proc, service: str, name: str) -> Proc:
    argv = [*GOSSAMER, "run", "--service", service, "--port", str(free_port()),
            "--control", f"http://127.0.0.1:{control.port('port')}", "--lease", "3s",
            "--outbound-port", "0", "--inbound-port", "0", "--stats-port", "0",
            "--admin-port", "0", "--", *ECHO_APP]  # fmt: skip
    p = await procs.spawn(name, argv, env={"DEMO_INSTANCE": name})
    await p.wait_ready(b"gossamer-proxy ready")
    return p


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    procs = Procs(tmp_path)
    ca = CA()
    serials = {h: ca.issue(f"{h}.example.com", tmp_path / f"{h}.crt", tmp_path / f"{h}.key")
               for h in ("a", "b")}  # fmt: skip
    keys = {alg: SigningKey(alg, f"kid-{alg}") for alg in ("RS256", "ES256", "EdDSA")}
    try:
        control = await procs.control()
        base = f"http://127.0.0.1:{control.port('port')}"
        auth = control.auth_headers()
        async with aiohttp.ClientSession(base, headers=auth) as http:
            resp = await http.post("/api/v1/apply", json={"documents": documents(tmp_path, keys)})
            assert resp.status == 200, await resp.text()
        await asyncio.gather(
            start_app(procs, control, "reviews", "reviews-1"),
            start_app(procs, control, "ratings", "ratings-1"),
        )
        gateway = await start_gateway(procs, control, tmp_path, "gateway")
        yield Edge(procs, control, base, auth, gateway, ca, tmp_path, keys, serials)
    finally:
        await procs.close()


def forwarded(answer: Any) -> dict[str, str]:
    return {k: v for k, v in answer.json()["headers"]}


async def test_tls_sni_routing_redirect_hsts_and_hygiene(edge: Edge) -> None:
    https = edge.port("https")
    # Host and path routing into real sidecar-backed services, over TLS chosen by SNI.
    a = await get(https, "a.example.com", "/reviews/1", tls=edge.tls())
    assert a.status == 200 and a.json()["instance"] == "reviews-1", a
    assert a.serial == edge.serials["a"]
    assert a.headers[b"strict-transport-security"] == b"max-age=3600; includeSubDomains"
    r = await get(https, "a.example.com", "/ratings", tls=edge.tls())
    assert r.json()["instance"] == "ratings-1"
    b = await get(https, "x.y.b.example.com", "/any", tls=edge.tls(), sni="b.example.com")
    assert b.status == 200 and b.json()["instance"] == "ratings-1" and b.serial == edge.serials["b"]
    miss = await get(https, "a.example.com", "/nothing", tls=edge.tls())
    assert miss.status == 404 and miss.headers[b"x-gossamer-reason"] == b"no_route"
    other = await get(edge.port("http"), "unknown.org", "/reviews")
    assert other.status == 404
    # Exact host beats wildcard; a path its route lacks falls through to the wildcard's rules.
    exact = await get(edge.port("http"), "exact.b.example.com", "/only/1")
    assert exact.status == 200 and exact.json()["instance"] == "reviews-1"
    through = await get(edge.port("http"), "exact.b.example.com", "/else")
    assert through.status == 200 and through.json()["instance"] == "ratings-1"
    # An SNI that no certificate names: the handshake is refused.
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await get(https, "evil.org", "/", tls=edge.tls(), sni="evil.org")
    # Plain HTTP on the redirect listener: 308 to the HTTPS listener.
    red = await get(edge.port("redirect"), "a.example.com", "/reviews?q=1")
    assert red.status == 308
    assert red.headers[b"location"] == f"https://a.example.com:{https}/reviews?q=1".encode()
    # Spoofed forwarding and internal headers never reach the app.
    spoof = await get(edge.port("http"), "a.example.com", "/reviews", headers={
        "X-Forwarded-For": "6.6.6.6", "X-Gossamer-Debug": "1", "X-Forwarded-Proto": "https"})  # fmt: skip
    seen = forwarded(spoof)
    assert "6.6.6.6" not in seen.get("x-forwarded-for", "") and "x-gossamer-debug" not in seen
    assert seen.get("x-forwarded-proto") == "http"
    # A bad path and ambiguous framing: refused with a precise 4xx.
    bad = await get(edge.port("http"), "a.example.com", "/reviews/%2e%2e%2fadmin%2F")
    assert bad.status == 400
    smuggle = (b"GET /reviews HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 5\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")  # fmt: skip
    assert (await get(edge.port("http"), "a.example.com", "/", raw=smuggle)).status == 400
    absolute = b"GET http://a.example.com/reviews/9 HTTP/1.1\r\nHost: elsewhere.org\r\n\r\n"
    via_absolute = await get(edge.port("http"), "a.example.com", "/", raw=absolute)
    assert via_absolute.status == 200 and via_absolute.json()["path"] == "/reviews/9"
    big = b"POST /reviews HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 5000\r\n\r\n"
    too_large = await get(edge.port("http"), "a.example.com", "/", raw=big)
    assert too_large.status == 413 and too_large.headers[b"x-gossamer-reason"] == b"body_too_large"
    # A chunked body declares no length: 413 once the streamed bytes pass --max-body (4096).
    chunk = b"800\r\n" + b"x" * 0x800 + b"\r\n"
    head = b"POST /reviews HTTP/1.1\r\nHost: a.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
    small = await get(edge.port("http"), "a.example.com", "/", raw=head + chunk + b"0\r\n\r\n")
    assert small.headers[b"server"].startswith(b"BaseHTTP"), small  # the app's own answer
    streamed = await get(
        edge.port("http"), "a.example.com", "/", raw=head + chunk * 3 + b"0\r\n\r\n"
    )
    assert streamed.status == 413 and streamed.headers[b"x-gossamer-reason"] == b"body_too_large"
    access_log = edge.tmp / "gateway-access.log"
    async with asyncio.timeout(10):  # the access log flushes about once a second
        while True:
            if "/reviews/1" in access_log.read_text():
                break
            await asyncio.sleep(0.1)
    line = next(ln for ln in access_log.read_text().splitlines() if "/reviews/1" in ln)
    assert json.loads(line)["status"] == 200
    async with aiohttp.ClientSession() as http:  # metrics like a sidecar's, mTLS shown
        async with http.get(f"http://127.0.0.1:{edge.gateway.port('stats')}/metrics") as resp:
            metrics = await resp.text()
    served = [ln for ln in metrics.splitlines() if ln.startswith("gossamer_requests_total{")]
    assert any('dst_service="default/reviews"' in ln and 'code="200"' in ln for ln in served)


async def test_jwt_and_api_keys(edge: Edge) -> None:
    port = edge.port("http")
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "edge", "sub": "alice", "exp": now + 300}

    async def call(token: str | None, extra: dict[str, str] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await get(port, "jwt.example.com", "/", headers={**headers, **(extra or {})})

    rsa_key = edge.keys["RS256"]
    for key in edge.keys.values():
        ok = await call(key.sign(claims), {"X-User": "mallory"})
        assert ok.status == 200, (key.alg, ok.body)
        assert forwarded(ok)["x-user"] == "alice"  # set from the claim; the client's is dropped
    # Rate limited per JWT subject: alice used 3 of her 4; bob has his own bucket.
    assert (await call(rsa_key.sign(claims))).status == 200
    assert (await call(rsa_key.sign(claims))).status == 429
    assert (await call(rsa_key.sign({**claims, "sub": "bob"}))).status == 200
    missing = await call(None)
    assert missing.status == 401
    assert missing.headers[b"www-authenticate"].startswith(b'Bearer realm="gossamer"')
    rsa = edge.keys["RS256"]
    attacks = {
        "expired": rsa.sign({**claims, "exp": now - 120}),
        "not yet valid": rsa.sign({**claims, "nbf": now + 300}),
        "wrong issuer": rsa.sign({**claims, "iss": "https://evil"}),
        "wrong audience": rsa.sign({**claims, "aud": "other"}),
        "unknown kid": rsa.sign(claims, {"kid": "rotated-away"}),
        "alg none": unsigned(claims),
        "key confusion": hs256_with(rsa.public_pem(), claims, rsa.kid),
        "tampered": rsa.sign(claims)[:-8] + "AAAAAAAA",
        "oversized": rsa.sign({**claims, "pad": "x" * 9000}),
    }
    for name, token in attacks.items():
        answer = await call(token)
        assert answer.status == 401, (name, answer.status, answer.body)
        assert b'error="invalid_token"' in answer.headers[b"www-authenticate"], name
    good = await get(port, "keys.example.com", "/", headers={"X-Api-Key": API_KEY})
    assert good.status == 200
    seen = forwarded(good)
    assert seen["x-api-key-name"] == "ci" and "x-api-key" not in seen
    assert (await get(port, "keys.example.com", "/", headers={"X-Api-Key": "x" * 20})).status == 401
    assert (await get(port, "keys.example.com", "/")).status == 401
    # CORS: preflights are answered at the edge (no credentials), allowed origins only.
    preflight = {"Origin": "https://web.app.test", "Access-Control-Request-Method": "PUT"}
    pre = await get(port, "keys.example.com", "/", headers=preflight, method="OPTIONS")
    assert (
        pre.status == 200 and pre.headers[b"access-control-allow-origin"] == b"https://web.app.test"
    )
    assert pre.headers[b"access-control-allow-methods"] == b"GET, PUT"
    assert pre.headers[b"access-control-allow-headers"] == b"x-api-key"
    evil = {**preflight, "Origin": "https://app.test.evil.org"}
    assert (await get(port, "keys.example.com", "/", headers=evil, method="OPTIONS")).status == 403
    simple = await get(port, "keys.example.com", "/",
                       headers={"X-Api-Key": API_KEY, "Origin": "https://web.app.test"})  # fmt: skip
    assert simple.status == 200 and simple.headers[b"vary"] == b"Origin"
    assert simple.headers[b"access-control-allow-origin"] == b"https://web.app.test"


async def test_rate_limit_headers_and_two_replicas(edge: Edge) -> None:
    port = edge.port("http")
    answers = [await get(port, "limit.example.com", "/", headers={"X-Client": "c1"})
               for _ in range(12)]  # fmt: skip
    assert [a.status for a in answers] == [200] * 10 + [429] * 2
    assert answers[0].headers[b"ratelimit-limit"] == b"10"
    assert answers[0].headers[b"x-route"] == b"limited"  # the route's filters and ours
    assert answers[9].headers[b"ratelimit-remaining"] == b"0"
    refused = answers[10]
    assert int(refused.headers[b"retry-after"]) >= 1 and b"ratelimit-reset" in refused.headers
    other = await get(port, "limit.example.com", "/", headers={"X-Client": "c2"})
    assert other.status == 200  # per client key

    # A second replica: the control plane counts two live replicas, each takes half.
    second = await start_gateway(edge.procs, edge.control, edge.tmp, "gateway-2")
    replicas = [edge.gateway, second]
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(20):
            while True:
                views = []
                for gw in replicas:
                    async with http.get(f"http://127.0.0.1:{gw.port('stats')}/config") as resp:
                        views.append(await resp.json())
                if all(v["replicas"] == 2 for v in views):
                    break
                await asyncio.sleep(0.2)  # polling the replicas' own state, bounded above
    # Round robin over the two replicas, three times the limit: 10 pass in all (5 each).
    statuses = []
    for i in range(30):
        gw = replicas[i % 2]
        answer = await get(edge.port("http", gw), "limit.example.com", "/",
                           headers={"X-Client": "shared"})  # fmt: skip
        statuses.append(answer.status)
    assert statuses.count(200) == 10, statuses
    assert set(statuses) == {200, 429}


async def test_certificate_reload_without_restart(edge: Edge) -> None:
    https = edge.port("https")
    old = Client(https, edge.tls(), "a.example.com")
    first = await old.get("a.example.com", "/reviews")
    assert first.serial == edge.serials["a"]
    new_serial = edge.ca.issue("a.example.com", edge.tmp / "a.crt", edge.tmp / "a.key")
    async with asyncio.timeout(15):
        while True:
            fresh = await get(https, "a.example.com", "/reviews", tls=edge.tls())
            if fresh.serial == new_serial:
                break
            await asyncio.sleep(0.2)  # the gateway checks its files every second
    again = await old.get("a.example.com", "/reviews")  # the old connection still serves
    assert again.status == 200 and again.serial == edge.serials["a"]
    old.close()
    log = edge.gateway.log_path.read_text()
    assert "certificates reloaded" in log


async def test_mesh_sees_the_gateway_identity_and_remote_jwks_is_cached(edge: Edge) -> None:
    # An AuthorizationPolicy naming the gateway's SPIFFE identity decides at the sidecar:
    # the request went into the mesh over mTLS as spiffe://cluster.local/ns/default/sa/edge.
    deny = {"apiVersion": "gossamer.dev/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "no-edge-admin"},
            "spec": {"selector": {"matchLabels": {"service": "ratings"}}, "action": "DENY",
                     "rules": [{"from": [{"source": {"principals": [
                                   "cluster.local/ns/default/sa/edge"]}}],
                                "to": [{"operation": {"paths": ["/ratings/admin"]}}]}]}}  # fmt: skip
    # A JWKS served over HTTP, fetched by the gateway and cached for its max age.
    key, rotated = SigningKey("ES256", "remote-1"), SigningKey("EdDSA", "remote-2")
    served = {"keys": [key.jwk()]}
    fetches = 0

    async def jwks_handler(_: web.Request) -> web.Response:
        nonlocal fetches
        fetches += 1
        return web.json_response(served)

    app = web.Application()
    app.router.add_get("/jwks.json", jwks_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    jwks_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    remote = [
        {"apiVersion": "gossamer.dev/v1", "kind": "HTTPRoute", "metadata": {"name": "remote"},
         "spec": {"parentRefs": [{"kind": "Gateway", "name": "edge"}],
                  "hostnames": ["remote.example.com"],
                  "rules": [{"backendRefs": [{"name": "reviews"}]}]}},
        {"apiVersion": "gossamer.dev/v1", "kind": "AuthPolicy", "metadata": {"name": "remote"},
         "spec": {"targetRefs": [{"kind": "HTTPRoute", "name": "remote"}],
                  "jwt": [{"name": "remote", "issuer": ISSUER,
                           "remoteJWKS": f"http://127.0.0.1:{jwks_port}/jwks.json",
                           "jwksMaxAge": "10m"}]}},
    ]  # fmt: skip
    try:
        async with aiohttp.ClientSession(edge.base, headers=edge.auth) as http:
            body = {"documents": [deny, *remote], "waitSeconds": 15}
            resp = await http.post("/api/v1/apply", json=body)
            assert resp.status == 200, await resp.text()
        port = edge.port("http")
        async with asyncio.timeout(15):  # the gateway's long poll delivers the new route
            while True:
                probe = await get(port, "remote.example.com", "/")
                if probe.status != 404:
                    break
                await asyncio.sleep(0.1)
        denied = await get(port, "a.example.com", "/ratings/admin")
        assert denied.status == 403 and denied.headers[b"x-gossamer-reason"] == b"rbac_denied"
        assert (await get(port, "a.example.com", "/ratings/other")).status == 200

        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "carol", "exp": now + 300}
        bearer = {"Authorization": f"Bearer {key.sign(claims)}"}
        for _ in range(3):
            assert (await get(port, "remote.example.com", "/", headers=bearer)).status == 200
        assert fetches == 1  # cached
        # Key rotation: a token with a kid the cache does not know triggers one refetch.
        served = {"keys": [key.jwk(), rotated.jwk()]}
        bearer = {"Authorization": f"Bearer {rotated.sign(claims)}"}
        answer = await get(port, "remote.example.com", "/", headers=bearer)
        assert answer.status == 200, answer.body
        assert fetches == 2
    finally:
        await runner.cleanup()
