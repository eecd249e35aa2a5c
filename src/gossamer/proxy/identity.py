"""The sidecar's workload identity: its own key, CSRs, the current SVID and trust bundle,
and when to renew (pure functions of `now`).

The certificate work (key, CSR, checking an issued SVID) needs `cryptography`, ~12 MB
resident that an idle sidecar would carry all day for a few milliseconds of work. It runs
instead in a short-lived child (proxy/identity_worker.py) that answers one request over
pipes and exits. The private key is made there and handed back over the pipe: it stays in
the sidecar's own process tree, in memory, and is never sent anywhere else or written to
disk. This module imports only the standard library.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Literal

RENEW_FRACTION = 0.7  # renew at 70 % of the certificate's life...
RENEW_JITTER = 0.1  # ...give or take 5 %, so a fleet issued together does not renew together
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0
WORKER_TIMEOUT = 30.0  # a child that has not answered by then is killed
WORKER = (sys.executable, "-m", "gossamer.proxy.identity_worker")


class IdentityError(ValueError):
    """An issued certificate that does not fit this workload (wrong key, no SPIFFE ID...)."""


@dataclass(frozen=True, slots=True)
class Svid:
    spiffe_id: str
    not_before: float  # epoch seconds
    not_after: float
    cert_chain_pem: bytes  # leaf first, then intermediates

    @property
    def lifetime(self) -> float:
        return self.not_after - self.not_before


class WorkloadIdentity:
    """Holds the key (ECDSA P-256, made on first use), the current SVID and the bundle
    that verifies peers. Each crypto step is one run of the identity worker."""

    def __init__(self, expected_id: str | None = None) -> None:
        self.expected_id = expected_id
        self._key: str | None = None  # PKCS#8 PEM
        self.svid: Svid | None = None
        self.bundle_pem: bytes | None = None

    def _key_pem(self) -> str:
        if self._key is None:
            self._key = str(run_worker({"op": "key"})["key"])
        return self._key

    def csr_pem(self) -> bytes:
        """A CSR over our key. The CA ignores its names; the SAN is a hint for humans."""
        request = {"op": "csr", "key": self._key_pem(), "expected_id": self.expected_id}
        return str(run_worker(request)["csr"]).encode("ascii")

    def install(self, cert_chain_pem: bytes, bundle_pem: bytes) -> Svid:
        """Accept an SVID from the CA (raises IdentityError if it does not fit; the old one
        stays in place)."""
        facts = run_worker(
            {
                "op": "check",
                "key": self._key_pem(),
                "chain": cert_chain_pem.decode("latin-1"),
                "bundle": bundle_pem.decode("latin-1"),
                "expected_id": self.expected_id,
            }
        )
        svid = Svid(
            str(facts["spiffe_id"]),
            float(facts["not_before"]),
            float(facts["not_after"]),
            cert_chain_pem,
        )
        self.svid, self.bundle_pem = svid, bundle_pem
        return svid

    def key_pem(self) -> bytes:
        """For building SSL contexts in this process (proxy/tls.py); never sent anywhere."""
        return self._key_pem().encode("ascii")

    def tls_material(self) -> tuple[bytes, bytes, bytes]:
        """(cert chain, key, bundle) for `MeshTLS(...)` / `MeshTLS.update(...)`."""
        if self.svid is None or self.bundle_pem is None:
            raise IdentityError("no SVID installed yet")
        return self.svid.cert_chain_pem, self.key_pem(), self.bundle_pem


def run_worker(request: dict[str, Any]) -> dict[str, Any]:
    """One request to a fresh identity worker; its refusal or failure as IdentityError."""
    try:
        done = subprocess.run(
            WORKER,
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=WORKER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise IdentityError(f"identity worker did not run: {exc}") from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = None
    if done.returncode != 0 or not isinstance(answer, dict):
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise IdentityError(f"identity worker failed ({done.returncode}): {' '.join(tail)}")
    if "error" in answer:
        raise IdentityError(str(answer["error"]))
    return answer


# Timing: pure functions, `now` and randomness passed in ---------------------------------


def renew_at(not_before: float, not_after: float, rand: float) -> float:
    """notBefore + (70 % ± 5 %) of the life; `rand` in [0, 1)."""
    fraction = RENEW_FRACTION + (rand - 0.5) * RENEW_JITTER
    return not_before + (not_after - not_before) * fraction


def retry_delay(failures: int, rand: float) -> float:
    """Back-off after `failures` consecutive failures (≥ 1): exponential, capped, with
    equal jitter (half fixed, so retries never bunch at zero)."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** min(failures - 1, 30))
    return ceiling / 2 + rand * ceiling / 2


State = Literal["missing", "valid", "renewing", "expired"]


class RenewalSchedule:
    """When to ask for a new SVID, and whether the current one may still be served.

    Serve until notAfter, then fail closed: no mTLS connections rather than an expired
    certificate. Failed renewals back off, but the next try is never scheduled after expiry.
    """

    __slots__ = ("failures", "next_attempt", "not_after", "not_before")

    def __init__(self) -> None:
        self.not_before: float | None = None
        self.not_after: float | None = None
        self.next_attempt = 0.0  # no SVID yet: ask at once
        self.failures = 0

    def on_issued(self, svid: Svid, rand: float) -> None:
        self.not_before, self.not_after = svid.not_before, svid.not_after
        self.failures = 0
        self.next_attempt = renew_at(svid.not_before, svid.not_after, rand)

    def on_failure(self, now: float, rand: float) -> None:
        self.failures += 1
        attempt = now + retry_delay(self.failures, rand)
        if self.not_after is not None and now < self.not_after:
            attempt = min(attempt, self.not_after)
        self.next_attempt = attempt

    def due(self, now: float) -> bool:
        return now >= self.next_attempt

    def seconds_until_due(self, now: float) -> float:
        return max(0.0, self.next_attempt - now)

    def can_serve(self, now: float) -> bool:
        return self.not_after is not None and now < self.not_after

    def state(self, now: float) -> State:
        if self.not_after is None:
            return "missing"
        if now >= self.not_after:
            return "expired"
        return "renewing" if now >= self.next_attempt or self.failures else "valid"
