"""The sidecar's identity: its key and CSR, installing SVIDs, and renewal timing in
virtual time (serve until expiry, then fail closed)."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from gossamer.control.ca import MeshCA
from gossamer.proxy.identity import (
    RETRY_CAP_SECONDS,
    IdentityError,
    RenewalSchedule,
    Svid,
    WorkloadIdentity,
    renew_at,
    retry_delay,
)

REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"
DAY = 86400.0


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> MeshCA:
    return MeshCA.create(tmp_path_factory.mktemp("ca") / "ca", "cluster.local")


def test_csr_is_self_signed_over_our_key_and_the_svid_installs(ca: MeshCA) -> None:
    identity = WorkloadIdentity(expected_id=REVIEWS)
    csr = x509.load_pem_x509_csr(identity.csr_pem())
    assert csr.is_signature_valid
    svid = identity.install(ca.sign_csr(identity.csr_pem(), REVIEWS, 600), ca.trust_bundle())
    assert svid.spiffe_id == REVIEWS
    assert svid.not_after - svid.not_before == 660  # 600 s plus 60 s of backdating
    chain, key, bundle = identity.tls_material()
    assert (chain, bundle) == (svid.cert_chain_pem, ca.trust_bundle())
    assert b"PRIVATE KEY" in key


def test_wrong_certificates_are_refused_and_the_old_one_kept(ca: MeshCA) -> None:
    identity = WorkloadIdentity(expected_id=REVIEWS)
    with pytest.raises(IdentityError, match="no SVID"):
        identity.tls_material()
    good = identity.install(ca.sign_csr(identity.csr_pem(), REVIEWS), ca.trust_bundle())
    stranger = WorkloadIdentity()
    other_key_cert = ca.sign_csr(stranger.csr_pem(), REVIEWS)
    with pytest.raises(IdentityError, match="not for this workload's key"):
        identity.install(other_key_cert, ca.trust_bundle())
    wrong_id = ca.sign_csr(identity.csr_pem(), "spiffe://cluster.local/ns/default/sa/ratings")
    with pytest.raises(IdentityError, match="expected"):
        identity.install(wrong_id, ca.trust_bundle())
    with pytest.raises(IdentityError, match="not a workload"):
        identity.install(ca.trust_bundle(), ca.trust_bundle())  # a CA cert: URI has no path
    with pytest.raises(IdentityError, match="bundle"):
        identity.install(ca.sign_csr(identity.csr_pem(), REVIEWS), b"junk")
    with pytest.raises(IdentityError, match=r"not an X\.509-SVID"):
        identity.install(b"junk", ca.trust_bundle())
    assert identity.svid is good


def test_keys_are_per_process_and_fresh() -> None:
    assert WorkloadIdentity().key_pem() != WorkloadIdentity().key_pem()


def test_tls_module_does_not_load_cryptography() -> None:
    code = "import sys, gossamer.proxy.tls; print('cryptography' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_renew_at_is_seventy_percent_of_life_with_bounded_jitter() -> None:
    assert renew_at(1000.0, 1100.0, 0.5) == pytest.approx(1070.0)
    assert renew_at(1000.0, 1100.0, 0.0) == pytest.approx(1065.0)
    assert renew_at(1000.0, 1100.0, 0.999999) == pytest.approx(1075.0, abs=1e-3)
    issued = 1_800_000_000.0
    for rand in (0.0, 0.25, 0.5, 0.75, 0.999):
        at = renew_at(issued - 60, issued + DAY, rand)
        assert issued + 0.64 * DAY < at < issued + 0.76 * DAY


def test_retry_delay_grows_to_the_cap_and_never_reaches_zero() -> None:
    assert retry_delay(1, 0.0) == 0.5
    assert retry_delay(1, 0.999) == pytest.approx(1.0, abs=1e-2)
    assert retry_delay(3, 0.0) == 2.0
    assert retry_delay(10, 0.0) == RETRY_CAP_SECONDS / 2
    assert retry_delay(10_000, 0.999) <= RETRY_CAP_SECONDS


def svid(not_before: float, not_after: float) -> Svid:
    return Svid(REVIEWS, not_before, not_after, b"")


def test_schedule_without_svid_asks_at_once_and_serves_nothing() -> None:
    schedule = RenewalSchedule()
    assert schedule.due(0.0)
    assert not schedule.can_serve(0.0)
    assert schedule.state(0.0) == "missing"
    schedule.on_failure(0.0, 0.0)
    assert schedule.next_attempt == 0.5  # no expiry to clamp to: plain back-off


def test_schedule_renews_at_seventy_percent_then_resets() -> None:
    schedule = RenewalSchedule()
    schedule.on_issued(svid(0.0, 100.0), rand=0.5)
    assert schedule.state(10.0) == "valid" and not schedule.due(69.9)
    assert schedule.seconds_until_due(10.0) == pytest.approx(60.0)
    assert schedule.due(70.0) and schedule.state(70.0) == "renewing"
    schedule.on_issued(svid(70.0, 170.0), rand=0.5)
    assert schedule.next_attempt == pytest.approx(140.0) and schedule.failures == 0


def test_outage_backs_off_serves_until_expiry_then_fails_closed() -> None:
    """The CA is down from the renewal point on: walk virtual time attempt by attempt."""
    schedule = RenewalSchedule()
    schedule.on_issued(svid(0.0, 1000.0), rand=0.5)
    now = schedule.next_attempt
    attempts: list[float] = []
    while now < 1500.0:
        assert schedule.due(now)
        attempts.append(now)
        schedule.on_failure(now, rand=0.5)
        assert schedule.can_serve(now) == (now < 1000.0)
        assert schedule.state(now) == ("renewing" if now < 1000.0 else "expired")
        now = schedule.next_attempt
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] == pytest.approx(0.75) and gaps[1] == pytest.approx(1.5)
    assert max(gaps) <= RETRY_CAP_SECONDS
    assert min(gaps) > 0  # never a busy loop, not even after expiry
    assert 1000.0 in attempts  # the last try before expiry is pinned to the expiry itself
    assert not schedule.can_serve(1000.0) and schedule.can_serve(999.999)
    # The CA comes back: a fresh SVID serves again and the back-off is forgotten.
    schedule.on_issued(svid(now - 60, now + 1000), rand=0.5)
    assert schedule.can_serve(now) and schedule.failures == 0 and schedule.state(now) == "valid"


def test_svid_times_come_from_the_certificate(ca: MeshCA, tmp_path: Path) -> None:
    identity = WorkloadIdentity()
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    got = identity.install(
        ca.sign_csr(identity.csr_pem(), REVIEWS, 3600, now=now), ca.trust_bundle()
    )
    assert got.not_before == now.timestamp() - 60
    assert got.not_after == now.timestamp() + 3600
    assert got.lifetime == 3660
