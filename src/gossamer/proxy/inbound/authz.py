"""The inbound authorization hook: normalise the path once, decide, forward what was decided.

The sidecar's own service entry carries the AuthorizationPolicies that select the service
(ENTRY["authz"]); the instance labels are matched here (proxy/authz.py). Refusals:
400 `bad_path` for a path proxy/paths.py refuses, 403 `rbac_denied` with
`x-gossamer-policy: <ns>/<name>` when a policy decided, counted by reason and policy.
"""

from __future__ import annotations

from collections.abc import Mapping

from gossamer.proxy.authz import Policy, decide, select
from gossamer.proxy.http import errors
from gossamer.proxy.http.exchange import Exchange
from gossamer.proxy.paths import PathError, normalise_target
from gossamer.proxy.state import SnapshotHolder
from gossamer.proxy.telemetry.stats import Stats

NO_SNAPSHOT = "no_snapshot"  # denial code before the first snapshot: fail closed


class InboundAuthorizer:
    __slots__ = ("_allows", "_denies", "_policies", "holder", "labels", "service_key", "stats")

    def __init__(
        self, holder: SnapshotHolder, service_key: str, labels: Mapping[str, str], stats: Stats
    ) -> None:
        self.holder = holder
        self.service_key = service_key
        self.labels = dict(labels)
        self.stats = stats
        # The policies selecting our labels, recomputed only when the entry's list changes.
        self._policies: tuple[Policy, ...] = ()
        self._denies: tuple[Policy, ...] = ()
        self._allows: tuple[Policy, ...] = ()

    def __call__(self, ex: Exchange) -> bool:
        """True: forward `ex.upstream_target` (now normalised). False: answered already."""
        head = ex.head
        target = ex.upstream_target
        if target == b"*" and head.method == b"OPTIONS":
            path = "*"
        else:
            try:
                target, path = normalise_target(target)
            except PathError:
                ex.fail(400, errors.BAD_PATH)
                return False
            ex.upstream_target = target
        snapshot = self.holder.current
        view = snapshot.services.get(self.service_key) if snapshot is not None else None
        if view is None:
            self.stats.authz_denied(NO_SNAPSHOT, "")
            ex.fail(403, errors.RBAC_DENIED)
            return False
        policies = view.authz
        if not policies:
            return True
        if policies is not self._policies:
            self._denies, self._allows = select(policies, self.labels)
            self._policies = policies
        decision = decide(
            self._denies,
            self._allows,
            ex.client.identity,
            head.method.decode("latin-1"),
            path,
            head.headers,
        )
        if decision.allowed:
            return True
        self.stats.authz_denied(decision.code, decision.policy)
        extra = b"x-gossamer-policy: %s\r\n" % decision.policy.encode() if decision.policy else b""
        ex.fail(403, errors.RBAC_DENIED, extra)
        return False
