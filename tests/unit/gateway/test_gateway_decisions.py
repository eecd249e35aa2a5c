"""The gateway's pure decisions: hosts, rate limits, authentication, the compiled view."""

from __future__ import annotations

import hashlib

import pytest
from jwtkit import SigningKey, jwks

from gossamer.control.gateway_compiler import compile_gateway, intersect
from gossamer.gateway.auth import AuthPolicy
from gossamer.gateway.config import (
    find_host,
    matching_hosts,
    normalize_host,
    parse_duration_text,
)
from gossamer.gateway.cors import Cors
from gossamer.gateway.ratelimit import Limiter, LimitSpec, client_ip, headers_for
from gossamer.model import parse_document

NOW = 1_800_000_000.0


def test_host_precedence() -> None:
    hosts = {"a.example.com": 1, "*.example.com": 2, "*.b.example.com": 3, "*": 4}
    assert find_host(hosts, "a.example.com") == 1
    assert find_host(hosts, "x.example.com") == 2
    assert find_host(hosts, "x.y.example.com") == 2  # a wildcard spans labels
    assert find_host(hosts, "x.b.example.com") == 3  # the longer wildcard wins
    assert find_host(hosts, "other.org") == 4
    assert find_host({"a.example.com": 1}, "example.com") is None
    # Every virtual host a request falls in, most specific first: a rule miss falls through.
    assert matching_hosts(hosts, "a.example.com") == [1, 2, 4]
    assert matching_hosts(hosts, "x.b.example.com") == [3, 2, 4]
    assert matching_hosts({"a.example.com": 1}, "b.example.com") == []
    assert normalize_host(b"API.Example.com:8443") == "api.example.com"
    assert normalize_host(b"[::1]:80") == "[::1]"


def test_hostname_intersection() -> None:
    assert intersect(None, "a.example.com") == "a.example.com"
    assert intersect("*.example.com", "a.example.com") == "a.example.com"
    assert intersect("a.example.com", "*.example.com") == "a.example.com"
    assert intersect("*.example.com", "*.b.example.com") == "*.b.example.com"
    assert intersect("a.example.com", "b.example.com") is None
    assert intersect("*.example.com", "example.org") is None


def _limiter(requests: int, per: float, burst: int, replicas: int = 1) -> Limiter:
    return Limiter(LimitSpec(requests, per, burst, "ClientIP", "", 0), replicas)


def test_token_bucket_and_headers() -> None:
    lim = _limiter(requests=2, per=1.0, burst=2)
    verdicts = [lim.take("c", 10.0) for _ in range(3)]
    assert [v.allowed for v in verdicts] == [True, True, False]
    assert verdicts[1].remaining == 0 and verdicts[2].retry_after == pytest.approx(0.5)
    assert lim.take("other", 10.0).allowed  # per client
    assert lim.take("c", 10.5).allowed  # refilled one token in half a second
    lines = headers_for(verdicts[2]).decode()
    assert "ratelimit-limit: 2\r\n" in lines and "retry-after: 1\r\n" in lines
    assert "ratelimit-remaining: 0\r\n" in lines


def test_replica_share() -> None:
    one, two = _limiter(100, 60.0, 10, replicas=2), _limiter(100, 60.0, 10, replicas=2)
    admitted = sum(lim.take("c", 0.0).allowed for lim in (one, two) for _ in range(20))
    assert admitted == 10  # burst 10 split in two shares of 5
    assert one.limit == 50


def test_client_ip_trusts_only_the_configured_hops() -> None:
    assert client_ip("10.0.0.9", "1.1.1.1, 2.2.2.2", 0) == "10.0.0.9"
    assert client_ip("10.0.0.9", "spoofed, 1.1.1.1, 2.2.2.2", 1) == "2.2.2.2"
    assert client_ip("10.0.0.9", "spoofed, 1.1.1.1, 2.2.2.2", 2) == "1.1.1.1"


def _auth(spec: dict) -> AuthPolicy:
    return AuthPolicy(spec, parse_duration_text)


def test_auth_policy_decisions() -> None:
    key = SigningKey("ES256", "k1")
    policy = _auth(
        {
            "jwt": [
                {
                    "name": "main",
                    "issuer": "iss",
                    "audiences": ["api"],
                    "localJWKS": jwks(key),
                    "claimToHeaders": [{"claim": "sub", "header": "x-user"}],
                }
            ],
            "apiKey": {
                "header": "x-api-key",
                "keys": [{"name": "ci", "sha256": hashlib.sha256(b"k" * 20).hexdigest()}],
                "forwardNameHeader": "x-api-key-name",
            },
            "requireClaims": {"scope": ["read"]},
        }
    )
    good = key.sign(
        {"iss": "iss", "aud": "api", "sub": "bob", "scope": "read write", "exp": NOW + 60}
    )
    d = policy.decide([(b"authorization", b"Bearer " + good.encode())], NOW)
    assert d.status == 0 and d.add == [(b"x-user", b"bob")]
    d = policy.decide([], NOW)
    assert d.status == 401 and d.extra.startswith(b'www-authenticate: Bearer realm="gossamer"')
    no_scope = key.sign({"iss": "iss", "aud": "api", "sub": "bob", "exp": NOW + 60})
    assert policy.decide([(b"authorization", b"Bearer " + no_scope.encode())], NOW).status == 403
    expired = key.sign({"iss": "iss", "aud": "api", "exp": NOW - 600})
    d = policy.decide([(b"authorization", b"Bearer " + expired.encode())], NOW)
    assert d.status == 401 and b'error="invalid_token"' in d.extra and b"expired" in d.extra
    assert policy.decide([(b"x-api-key", b"k" * 20)], NOW).add == [(b"x-api-key-name", b"ci")]
    assert policy.decide([(b"x-api-key", b"wrong-key-value!")], NOW).status == 401
    assert policy.owned_headers == {b"x-user", b"x-api-key-name"}


def test_api_keys_are_stored_hashed() -> None:
    doc = parse_document({
        "apiVersion": "gossamer.dev/v1", "kind": "AuthPolicy", "metadata": {"name": "keys"},
        "spec": {"targetRefs": [{"kind": "Gateway", "name": "edge"}],
                 "apiKey": {"keys": [{"name": "ci", "key": "s3cret-s3cret-s3cret"}]}},
    })  # fmt: skip
    dumped = doc.spec.model_dump(mode="json", exclude_none=True)
    assert "s3cret" not in str(dumped)
    assert (
        dumped["apiKey"]["keys"][0]["sha256"] == hashlib.sha256(b"s3cret-s3cret-s3cret").hexdigest()
    )


def _doc(kind: str, name: str, spec: dict, created: str = "2026-01-01T00:00:00+00:00") -> dict:
    meta = {"name": name, "namespace": "default", "creationTimestamp": created}
    return {"kind": kind, "metadata": meta, "spec": spec}


def test_compiled_view_attaches_routes_and_policies() -> None:
    gw = _doc("Gateway", "edge", {"listeners": [
        {"name": "web", "port": 8443, "protocol": "HTTPS", "hostname": "*.example.com",
         "tls": {"certificateRefs": [{"kind": "Secret", "name": "tls"}]}},
        {"name": "plain", "port": 8080, "protocol": "HTTP"}]})  # fmt: skip
    parent = [{"kind": "Gateway", "name": "edge"}]
    api = _doc("HTTPRoute", "api", {"parentRefs": parent, "hostnames": ["api.example.com"],
               "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                          "backendRefs": [{"name": "reviews"}]}]})  # fmt: skip
    other = _doc("HTTPRoute", "other", {"parentRefs": parent, "hostnames": ["x.org"],
                 "rules": [{"backendRefs": [{"name": "ratings"}]}]})  # fmt: skip
    mesh = _doc("HTTPRoute", "mesh", {"parentRefs": [{"name": "reviews"}]})
    secret = _doc("Secret", "tls", {"cert": "CERT", "key": "KEY"})
    auth_gw = _doc("AuthPolicy", "all", {"targetRefs": [{"kind": "Gateway", "name": "edge"}]})
    auth_route = _doc(
        "AuthPolicy", "api-only", {"targetRefs": [{"kind": "HTTPRoute", "name": "api"}]}
    )
    docs = {"Gateway": [gw], "HTTPRoute": [api, other, mesh], "Secret": [secret],
            "AuthPolicy": [auth_gw, auth_route]}  # fmt: skip
    view = compile_gateway(docs, "default", "edge", replicas=2)
    assert view is not None and view["replicas"] == 2
    web, plain = view["listeners"]
    assert list(web["hosts"]) == ["api.example.com"]  # x.org does not fit *.example.com
    assert web["certificates"] == [{"certPem": "CERT", "keyPem": "KEY"}]
    assert web["auth"] == {"default/api": "default/api-only"}  # the route's own wins
    assert sorted(plain["hosts"]) == ["api.example.com", "x.org"]
    assert plain["auth"]["default/other"] == "default/all"
    assert view["services"] == ["default/ratings", "default/reviews"]
    route = web["hosts"]["api.example.com"][0]
    assert route["match"]["path"] == {"type": "PathPrefix", "value": "/v1"}
    assert compile_gateway(docs, "default", "missing") is None


def test_cors_origins_and_headers() -> None:
    cors = Cors({"allowOrigins": ["https://*.app.test", "http://localhost:3000"],
                 "allowCredentials": True, "exposeHeaders": ["x-total"]})  # fmt: skip
    assert cors.allowed(b"https://a.app.test") and cors.allowed(b"https://a.b.app.test")
    assert cors.allowed(b"http://localhost:3000")
    assert not cors.allowed(b"https://app.test") and not cors.allowed(b"http://a.app.test")
    assert not cors.allowed(b"https://a.app.test.evil.org")
    lines = cors.preflight_lines(b"https://a.app.test")
    assert b"access-control-allow-credentials: true\r\n" in lines
    assert b"access-control-allow-methods: GET, POST\r\n" in lines
    headers = cors.response_ops(b"https://a.app.test").apply([(b"vary", b"Accept")])
    assert (b"access-control-expose-headers", b"x-total") in headers
    assert (b"vary", b"Accept,Origin") in headers
