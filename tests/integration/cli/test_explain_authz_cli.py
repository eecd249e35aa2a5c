"""`gossamer explain authz` as an operator runs it, against a real `gossamer control`: the
policies come from the control plane and are decided by the sidecar's own code."""

from __future__ import annotations

from cli_harness import Cli

SERVICE = """
apiVersion: gossamer.dev/v1
kind: Service
metadata: {name: reviews}
"""
POLICIES = """
apiVersion: gossamer.dev/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin}
spec:
  selector: {matchLabels: {service: reviews}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin", "/admin/*"]}}]}]
---
apiVersion: gossamer.dev/v1
kind: AuthorizationPolicy
metadata: {name: frontend-reads}
spec:
  selector: {matchLabels: {service: reviews}}
  rules:
  - from: [{source: {services: [frontend]}}]
    to: [{operation: {methods: [GET]}}]
    when: [{key: "request.headers[x-tenant]", notValues: [blocked]}]
"""


def test_explain_authz_names_the_deciding_policy(cli: Cli) -> None:
    assert cli("apply", "-f", "-", stdin=SERVICE).code == 0
    none = cli("explain", "authz", "--from", "frontend", "--to", "reviews", "GET", "/admin")
    assert none.code == 0 and "ALLOWED: no AuthorizationPolicy selects" in none.out
    assert cli("apply", "-f", "-", stdin=POLICIES).code == 0
    listed = cli("get", "authz")
    assert listed.code == 0 and "ACTION" in listed.out and "SELECTOR" in listed.out
    row = next(line for line in listed.out.splitlines() if line.startswith("deny-admin"))
    assert row.split()[1:4] == ["DENY", "service=reviews", "1"], row

    admin = cli(
        "explain", "authz", "--from", "frontend", "--to", "reviews", "GET", "/x/%2e%2e/admin"
    )
    assert admin.code == 1, admin.out
    assert "path normalised: /x/%2e%2e/admin -> /admin" in admin.out
    assert "DENIED 403 rbac_denied: DENY policy default/deny-admin rule 0 matches" in admin.out

    ok = cli("explain", "authz", "--from", "frontend", "--to", "reviews", "GET", "/api")
    assert ok.code == 0 and "ALLOW policy default/frontend-reads rule 0 matches" in ok.out
    assert "from spiffe://cluster.local/ns/default/sa/frontend" in ok.out

    blocked = cli(
        "explain", "authz", "--from", "frontend", "--to", "reviews", "-H", "x-tenant: blocked",
        "GET", "/api",
    )  # fmt: skip
    assert blocked.code == 1 and "no rule matches" in blocked.out
    post = cli("explain", "authz", "--from", "frontend", "--to", "default/reviews", "POST", "/api")
    assert post.code == 1 and "no rule matches" in post.out
    stranger = cli("explain", "authz", "--from", "shop/frontend", "--to", "reviews", "GET", "/api")
    assert stranger.code == 1
    plaintext = cli("explain", "authz", "--to", "reviews", "GET", "/api")
    assert plaintext.code == 1 and "(no identity: plaintext)" in plaintext.out
    assert "mTLS STRICT: a plaintext caller is refused" in plaintext.out

    bad = cli("explain", "authz", "--from", "frontend", "--to", "reviews", "GET", "/a%2Fadmin")
    assert bad.code == 1 and "400 bad_path" in bad.out
