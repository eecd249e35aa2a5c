"""mTLS policy decisions without sockets: which endpoints get TLS and which identity they
must present, the inbound mode, failing closed, SPIFFE ID checks, failure reasons."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from gossamer.proxy.mtls import (
    MeshSecurity,
    NoIdentity,
    classify,
    in_trust_domain,
)
from gossamer.proxy.snapshot import Snapshot
from gossamer.proxy.state import SnapshotHolder

LABEL = {"security.gossamer.dev/tls-mode": "mtls"}


def entry(name: str, eps: list[tuple[int, dict[str, str]]], mtls: str = "STRICT") -> Any:
    return {"name": name, "namespace": "default", "exists": True, "protocol": "HTTP",
            "endpoints": [{"id": f"{name}-{p}", "address": "10.0.0.1", "port": p, "labels": lb}
                          for p, lb in eps],
            "routes": [], "policy": {}, "mtls": mtls}  # fmt: skip


def security(services: dict[str, Any], now: float = 100.0) -> tuple[MeshSecurity, list[str]]:
    holder = SnapshotHolder()
    holder.update(Snapshot.from_wire({"type": "snapshot", "protocol": 1, "version": 1,
                                      "mesh": {}, "services": services}))  # fmt: skip
    failures: list[str] = []
    sec = MeshSecurity(holder, "default/reviews", failures.append, clock=lambda: now)
    sec.enabled, sec.trust_domain = True, "cluster.local"
    return sec, failures


class FakeTLS:
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)


def test_originate_tls_only_to_sidecars_with_the_destinations_identity() -> None:
    sec, failures = security({
        "default/reviews": entry("reviews", [(1, LABEL), (2, {})]),
        "default/legacy": entry("legacy", [(3, LABEL)], mtls="DISABLE"),
    })  # fmt: skip
    sec.tls, sec.not_after = FakeTLS(), 200.0  # type: ignore[assignment]
    ctx, expected = sec.originate(("10.0.0.1", 1))
    assert ctx is FakeTLS.client_context
    assert expected == {"spiffe://cluster.local/ns/default/sa/reviews"}
    assert sec.originate(("10.0.0.1", 2)) == (None, frozenset())  # no sidecar there
    assert sec.originate(("10.0.0.1", 3)) == (None, frozenset())  # DISABLE
    assert failures == []


def test_no_valid_svid_fails_closed() -> None:
    sec, failures = security({"default/reviews": entry("reviews", [(1, LABEL)])})
    with pytest.raises(NoIdentity):
        sec.originate(("10.0.0.1", 1))
    sec.tls, sec.not_after = FakeTLS(), 50.0  # type: ignore[assignment]  # expired at 50
    with pytest.raises(NoIdentity):
        sec.server_context()
    assert failures == ["no_svid", "no_svid"]
    sec.not_after = 150.0
    assert sec.server_context() is FakeTLS.server_context


def test_inbound_mode_from_own_entry_then_mesh() -> None:
    sec, _ = security({"default/reviews": entry("reviews", [], mtls="PERMISSIVE")})
    assert sec.inbound_mode() == "PERMISSIVE"
    sec, _ = security({})
    sec.mesh_mode = "DISABLE"
    assert sec.inbound_mode() == "DISABLE"
    sec.enabled = False
    assert sec.inbound_mode() == "DISABLE"


@pytest.mark.parametrize(
    ("sid", "ok"),
    [
        ("spiffe://cluster.local/ns/default/sa/web", True),
        ("spiffe://other.local/ns/default/sa/web", False),
        ("spiffe://cluster.local/ns/default/sa/web\x00.x", False),
        ("spiffe://cluster.local/ns/../sa/web", False),
        ("spiffe://cluster.local", False),
        ("spiffe://cluster.local/ns//sa", False),
        ("SPIFFE://cluster.local/ns/a", False),
        ("spiffe://cluster.local/" + "a" * 2100, False),
        (None, False),
    ],
)
def test_in_trust_domain(sid: str | None, ok: bool) -> None:
    assert in_trust_domain(sid, "cluster.local") is ok


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("[SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE] peer did not return a certificate", "no_cert"),
        ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired",
         "expired"),
        ("certificate verify failed: certificate is not yet valid", "not_yet_valid"),
        ("certificate verify failed: unable to get local issuer certificate", "unknown_ca"),
        ("[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca", "unknown_ca"),
        ("[SSL: UNSUPPORTED_PROTOCOL] unsupported protocol", "protocol_version"),
        ("[SSL: SOMETHING_ELSE] odd", "handshake_error"),
    ],
)  # fmt: skip
def test_classify(message: str, reason: str) -> None:
    assert classify(ssl.SSLError(1, message)) == reason
