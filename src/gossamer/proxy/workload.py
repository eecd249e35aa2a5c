"""The sidecar's side of zero trust, as one task in the runtime's task group:

1. credentials: the bootstrap token (or, locally, one obtained with the admin credential);
2. once the snapshot names a trust domain, the workload identity: a key made here, a CSR,
   the SVID, renewal at ~70 % of its life with back-off, renewal at once when the mesh CA's
   signer changes (root rotation), the trust bundle from the snapshot applied to new
   connections; serve until the SVID expires, then fail closed (MeshSecurity.can_serve).

`proxy/identity.py` (the only module importing `cryptography`) is imported only when the
control plane runs a CA.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gossamer.proxy.bootstrap import (
    LOCAL_TOKEN_TTL,
    bundle_fingerprints,
    local_admin_token,
    read_token,
)
from gossamer.proxy.control_client import ControlClient, ControlError, HttpClient
from gossamer.proxy.mtls import TLS_MODE_LABEL, TLS_MODE_MTLS, MeshSecurity, spiffe_id_of
from gossamer.proxy.tls import MeshTLS, check_peer

if TYPE_CHECKING:
    from gossamer.proxy.cli import ProxyConfig
    from gossamer.proxy.identity import RenewalSchedule, WorkloadIdentity
    from gossamer.proxy.state import SnapshotHolder

Log = Callable[[str], None]
TOKEN_RETRY_SECONDS = 1.0
# The control plane's own SVID when it serves TLS with a mesh-CA certificate.
CONTROL_NAMESPACE, CONTROL_SERVICE = "gossamer-system", "control"


class WorkloadSecurity:
    def __init__(
        self,
        cfg: ProxyConfig,
        client: ControlClient,
        security: MeshSecurity,
        mesh_view: Callable[[], dict[str, Any] | None],
        log: Log,
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.security = security
        self.mesh_view = mesh_view  # the snapshot's "mesh" section as received
        self.log = log
        self.credentials_ready = asyncio.Event()
        self.identity_ready = asyncio.Event()  # first SVID installed, or no CA in this mesh
        self.wake = asyncio.Event()  # a new snapshot arrived (bundle, signer, reconnect)
        self.identity: WorkloadIdentity | None = None
        self.schedule: RenewalSchedule | None = None
        self.signer = ""  # the CA authority that signed our current SVID
        self.bundle = b""
        self.serial = ""
        self.renewals = 0
        self.expired_at = 0.0  # the notAfter we already failed closed for

    # credentials --------------------------------------------------------------------------

    async def obtain_credentials(self) -> None:
        """Sets the control client's token; returns once it may talk to the control plane."""
        given = read_token(self.cfg.token, self.cfg.token_file)
        if given.fingerprint is not None and self.client.http.endpoint.tls:
            await self._pin(given.fingerprint)
        if given.token is not None:
            self.client.http.token = given.token
            self.credentials_ready.set()
            return
        admin = local_admin_token(self.cfg.control)
        if admin is None:
            self.log(
                "no token (--token, --token-file, GOSSAMER_TOKEN) and no local admin "
                "credential: talking to the control plane without one"
            )
            self.credentials_ready.set()
            return
        key = f"{self.cfg.namespace}/{self.cfg.service}"
        body = {
            "service": self.cfg.service,
            "namespace": self.cfg.namespace,
            "ttlSeconds": LOCAL_TOKEN_TTL,
        }
        http = HttpClient(self.client.http.endpoint, admin)
        while True:
            try:
                status, answer = await http.request("POST", "/api/v1/tokens", body)
            except ControlError as exc:
                self.log(f"cannot obtain a token yet: {exc}")
                await asyncio.sleep(TOKEN_RETRY_SECONDS)
                continue
            if status == 201 and isinstance(answer, dict) and isinstance(answer.get("token"), str):
                self.client.http.token = answer["token"].partition("#")[0]
                self.log(
                    f"no token given: used the local admin credential to obtain a token "
                    f"scoped to {key} (id {answer.get('id')})"
                )
            elif status in (404, 405):
                self.log("the control plane has no credentials API: talking without a token")
            else:
                # e.g. an admin.token left by another control plane: say so, carry on (the
                # control plane answers 401 until the sidecar is given a token).
                self.log(f"the local admin credential was refused ({status}); give --token")
            self.credentials_ready.set()
            return

    async def _pin(self, fingerprint: str) -> None:
        """First contact over https: fetch the (public) trust bundle without verifying, keep
        it only if it holds the CA the token names, then verify the control plane against
        it, and its SPIFFE ID, from the next request on (before the token is ever sent)."""
        probe = HttpClient(self.client.http.endpoint)
        probe.ssl = unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        while True:
            try:
                status, answer = await probe.request("GET", "/api/v1/trust-bundle")
                if status != 200 or not isinstance(answer, dict):
                    raise ControlError(f"trust bundle: {status}")
                bundle, domain = str(answer.get("bundle", "")), str(answer.get("trustDomain", ""))
                if fingerprint not in bundle_fingerprints(bundle):
                    raise ControlError("the control plane's CA is not the one the token names")
                break
            except (ControlError, ValueError) as exc:
                self.log(f"cannot pin the control plane yet: {exc}")
                await asyncio.sleep(TOKEN_RETRY_SECONDS)
        pinned = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        pinned.check_hostname = False  # identity is the URI SAN, checked below
        pinned.load_verify_locations(cadata=bundle)
        expected = spiffe_id_of(domain, f"{CONTROL_NAMESPACE}/{CONTROL_SERVICE}")
        self.client.http.ssl = pinned
        self.client.http.check_peer = lambda obj: check_peer(obj, expected)
        self.log(f"control plane pinned to CA {fingerprint[:19]}… as {expected}")

    # identity -----------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """What heartbeats carry: the bundle we use (rotation waits for every proxy)."""
        if not self.bundle:
            return {}
        return {"bundle": "sha256:" + hashlib.sha256(self.bundle).hexdigest()}

    async def run(self, holder: SnapshotHolder) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._follow(holder))
            tg.create_task(self._identity_loop())

    async def _follow(self, holder: SnapshotHolder) -> None:
        while True:
            await holder.changed()
            self.wake.set()

    async def _identity_loop(self) -> None:
        await self.credentials_ready.wait()
        mesh = await self._wait_for_mesh()
        trust_domain = mesh.get("trustDomain")
        if not isinstance(trust_domain, str) or not trust_domain:
            self.log("the control plane runs no CA: mTLS off")
            self.identity_ready.set()
            return
        from gossamer.proxy.identity import IdentityError, RenewalSchedule, WorkloadIdentity

        own = spiffe_id_of(trust_domain, f"{self.cfg.namespace}/{self.cfg.service}")
        self.identity = identity = WorkloadIdentity(own)
        self.schedule = schedule = RenewalSchedule()
        self.security.trust_domain = trust_domain
        self.security.enabled = True
        registration = self.client.registration
        if registration is not None:  # peers dial us over mTLS (not before we have an SVID)
            registration.labels = {**registration.labels, TLS_MODE_LABEL: TLS_MODE_MTLS}
        rng = random.Random()
        while True:
            mesh = self.mesh_view() or {}
            self.security.mesh_mode = str(mesh.get("mtls", "STRICT"))
            bundle = str(mesh.get("trustBundle", "")).encode()
            signer = str(mesh.get("trustSigner", ""))
            now = time.time()
            rotated = bool(self.signer) and bool(signer) and signer != self.signer
            if schedule.due(now) or rotated or (schedule.failures and self.wake.is_set()):
                try:
                    await self._renew(identity, bundle)
                    assert identity.svid is not None
                    schedule.on_issued(identity.svid, rng.random())
                except (ControlError, IdentityError, ssl.SSLError, ValueError) as exc:
                    schedule.on_failure(time.time(), rng.random())
                    self.log(f"certificate renewal failed ({schedule.failures}x): {exc}")
            elif bundle and bundle != self.bundle and identity.svid is not None:
                self._apply_bundle(identity, bundle)
            now = time.time()
            not_after = self.security.not_after
            if not_after and now >= not_after and self.expired_at != not_after:
                self.expired_at = not_after
                self.log("workload certificate expired and not renewed: refusing mTLS")
                self.security.on_expired()
            self.wake.clear()
            wait = schedule.seconds_until_due(now)
            if now < not_after:
                wait = min(wait, not_after - now)  # wake at expiry to fail closed
            try:
                async with asyncio.timeout(wait):
                    await self.wake.wait()
            except TimeoutError:
                pass

    async def _wait_for_mesh(self) -> dict[str, Any]:
        while (mesh := self.mesh_view()) is None:
            self.wake.clear()
            await self.wake.wait()
        return mesh

    async def _renew(self, identity: WorkloadIdentity, snapshot_bundle: bytes) -> None:
        path = f"/api/v1/proxies/{self.client._pid}/certificate"
        # The key and CSR come from a short-lived child (proxy/identity.py): wait for it in
        # a thread so the data plane keeps serving meanwhile.
        csr = await asyncio.to_thread(identity.csr_pem)
        status, answer = await self.client.http.request("POST", path, {"csr": csr.decode("ascii")})
        if status != 200 or not isinstance(answer, dict):
            raise ControlError(f"certificate refused: {status} {answer}")
        chain = str(answer.get("certificate", "")).encode()
        bundle = str(answer.get("bundle", "")).encode() or snapshot_bundle
        svid = await asyncio.to_thread(identity.install, chain, bundle)
        material = identity.tls_material()
        if self.security.tls is None:
            self.security.tls = MeshTLS(*material)
        else:
            self.security.tls.update(*material)
        self.security.not_after = svid.not_after
        self.signer = str(answer.get("signer", ""))
        self.bundle = bundle
        self.serial = str(answer.get("serial", ""))
        self.renewals += 1
        if self.identity_ready.is_set():
            self.log(f"certificate renewed, valid until {time.ctime(svid.not_after)}")
        else:
            self.log(f"identity {svid.spiffe_id}, valid until {time.ctime(svid.not_after)}")
            self.identity_ready.set()

    def _apply_bundle(self, identity: WorkloadIdentity, bundle: bytes) -> None:
        """A new trust bundle (rotation) for new connections, same SVID."""
        try:
            assert identity.svid is not None
            chain, key, _ = identity.tls_material()
            if self.security.tls is not None:
                self.security.tls.update(chain, key, bundle)
            identity.bundle_pem = bundle
            self.bundle = bundle
        except (ssl.SSLError, ValueError) as exc:
            self.log(f"trust bundle from the snapshot not applied: {exc}")

    def describe(self) -> dict[str, Any]:
        """For the admin /config: what we hold, for how long, how it is going."""
        svid = self.identity.svid if self.identity is not None else None
        return {
            "state": self.state(),
            "spiffeId": svid.spiffe_id if svid else None,
            "notAfter": svid.not_after if svid else None,
            "signer": self.signer,
            "issued": self.renewals,
            "inboundMode": self.security.inbound_mode(),
        }

    def state(self) -> str:
        if not self.security.enabled:
            return "off"
        schedule = self.schedule
        return schedule.state(time.time()) if schedule is not None else "missing"
