"""The registry of resource kinds: their names on the command line and their spec types."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from gossamer.model.gateway import AuthPolicySpec, GatewaySpec, RateLimitPolicySpec, SecretSpec
from gossamer.model.progressive import CanarySpec
from gossamer.model.resources import (
    HTTPRouteSpec,
    InstanceSpec,
    MeshConfigSpec,
    ServiceSpec,
    TrafficPolicySpec,
)
from gossamer.model.security import AuthorizationPolicySpec, PeerAuthenticationSpec


@dataclass(frozen=True)
class KindInfo:
    kind: str  # "HTTPRoute"
    plural: str  # "httproutes": also the REST collection name
    spec: type[BaseModel]
    short_names: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def names(self) -> tuple[str, ...]:
        return (self.singular, self.plural, *self.short_names)


KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo("Service", "services", ServiceSpec, ("svc",)),
        KindInfo("Instance", "instances", InstanceSpec, ("inst", "endpoint")),
        KindInfo("HTTPRoute", "httproutes", HTTPRouteSpec, ("route", "routes", "hr")),
        KindInfo("TrafficPolicy", "trafficpolicies", TrafficPolicySpec, ("tp", "policy")),
        KindInfo("MeshConfig", "meshconfigs", MeshConfigSpec, ("mesh",)),
        KindInfo(
            "AuthorizationPolicy", "authorizationpolicies", AuthorizationPolicySpec, ("authz", "ap")
        ),
        KindInfo("PeerAuthentication", "peerauthentications", PeerAuthenticationSpec, ("pa",)),
        KindInfo("Canary", "canaries", CanarySpec),
        KindInfo("Gateway", "gateways", GatewaySpec, ("gw",)),
        KindInfo("AuthPolicy", "authpolicies", AuthPolicySpec, ("authn",)),
        KindInfo("RateLimitPolicy", "ratelimitpolicies", RateLimitPolicySpec, ("rl",)),
        KindInfo("Secret", "secrets", SecretSpec),
    )
}

_BY_NAME: dict[str, KindInfo] = {}
for _info in KINDS.values():
    _BY_NAME[_info.kind.lower()] = _info
    for _name in _info.names():
        _BY_NAME[_name.lower()] = _info


def lookup_kind(name: str) -> KindInfo:
    """Find a kind by its Kind, singular, plural or short name, case-insensitively."""
    info = _BY_NAME.get(name.lower())
    if info is None:
        known = ", ".join(sorted(i.plural for i in KINDS.values()))
        raise KeyError(f"unknown kind {name!r}; known kinds: {known}")
    return info
