"""Security resource kinds, in Istio's shapes: AuthorizationPolicy and PeerAuthentication.

Workloads are selected by `selector.matchLabels`: the key `service` names the service, every
other key is an instance label. No selector: every service of the policy's namespace; in the
root namespace (`gossamer-system`): every service of the mesh.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gossamer.model.common import Labels, Strict, check_dns_label

ROOT_NAMESPACE = "gossamer-system"
SERVICE_LABEL = "service"  # the matchLabels key that names a service

_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")  # an HTTP method or header name
_HEADER_KEY = re.compile(r"^request\.headers\[([^\[\]]+)\]$")
# Condition keys Istio defines. The sidecar evaluates a subset (see proxy/authz.py); a DENY
# rule naming one it cannot evaluate fails closed, an ALLOW rule then never matches.
CONDITION_KEYS = frozenset(
    {
        "source.principal",
        "source.namespace",
        "source.ip",
        "remote.ip",
        "destination.port",
        "connection.sni",
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
    }
)
_CLAIMS_KEY = re.compile(r"^request\.auth\.claims\[[^\[\]]+\]$")
MAX_VALUES = 256  # per list: a policy is config, not a database


def _check_pattern(value: str) -> str:
    """Istio string match: exact, `prefix*`, `*suffix`, or `*` (any non-empty value)."""
    if not value:
        raise ValueError("must not be empty")
    if "*" in value[1:-1] or (value.count("*") > 1 and value != "*"):
        raise ValueError(
            f"{value!r}: '*' may only be the first or the last character (prefix or suffix match)"
        )
    return value


def _patterns(values: list[str]) -> list[str]:
    return [_check_pattern(v) for v in values]


Patterns = list[str]  # each checked by _patterns


class WorkloadSelector(Strict):
    matchLabels: Labels = Field(default_factory=dict)

    @field_validator("matchLabels")
    @classmethod
    def _service_is_a_name(cls, labels: dict[str, str]) -> dict[str, str]:
        service = labels.get(SERVICE_LABEL)
        if service is not None:
            try:
                check_dns_label(service)
            except ValueError as exc:
                raise ValueError(f"label {SERVICE_LABEL!r} names a service: {exc}") from None
        return labels

    @property
    def service(self) -> str | None:
        return self.matchLabels.get(SERVICE_LABEL)


class Source(Strict):
    principals: Patterns = Field(default_factory=list, max_length=MAX_VALUES)
    notPrincipals: Patterns = Field(default_factory=list, max_length=MAX_VALUES)
    namespaces: Patterns = Field(default_factory=list, max_length=MAX_VALUES)
    notNamespaces: Patterns = Field(default_factory=list, max_length=MAX_VALUES)
    # gossamer shorthand: "name" (in the policy's namespace) or "namespace/name".
    services: list[str] = Field(default_factory=list, max_length=MAX_VALUES)

    @field_validator("principals", "notPrincipals", "namespaces", "notNamespaces")
    @classmethod
    def _wildcards(cls, values: list[str]) -> list[str]:
        return _patterns(values)

    @field_validator("services")
    @classmethod
    def _services(cls, values: list[str]) -> list[str]:
        for value in values:
            for part in value.split("/", 1):
                check_dns_label(part)
        return values


class From(Strict):
    source: Source


class Operation(Strict):
    paths: Patterns = Field(default_factory=list, max_length=MAX_VALUES)
    notPaths: Patterns = Field(default_factory=list, max_length=MAX_VALUES)
    methods: list[str] = Field(default_factory=list, max_length=MAX_VALUES)
    notMethods: list[str] = Field(default_factory=list, max_length=MAX_VALUES)

    @field_validator("paths", "notPaths")
    @classmethod
    def _paths(cls, values: list[str]) -> list[str]:
        for value in _patterns(values):
            if not (value.startswith("/") or value.startswith("*")):
                raise ValueError(f"path {value!r} must start with '/' (or '*' for a suffix match)")
        return values

    @field_validator("methods", "notMethods")
    @classmethod
    def _methods(cls, values: list[str]) -> list[str]:
        for value in values:
            if value != "*" and not _TOKEN.match(value):
                raise ValueError(f"method {value!r} is not an HTTP method token")
        return values


class To(Strict):
    operation: Operation


class Condition(Strict):
    key: str = Field(min_length=1, max_length=512)
    values: list[str] = Field(default_factory=list, max_length=MAX_VALUES)
    notValues: list[str] = Field(default_factory=list, max_length=MAX_VALUES)

    @field_validator("key")
    @classmethod
    def _known_key(cls, key: str) -> str:
        header = _HEADER_KEY.match(key)
        if header is not None:
            if not _TOKEN.match(header.group(1)):
                raise ValueError(f"{key!r}: {header.group(1)!r} is not a header name")
            return key
        if key in CONDITION_KEYS or _CLAIMS_KEY.match(key):
            return key
        raise ValueError(
            f"unknown condition key {key!r}; use request.headers[<name>] or one of "
            + ", ".join(sorted(CONDITION_KEYS))
        )

    @model_validator(mode="after")
    def _has_values(self) -> Condition:
        if not self.values and not self.notValues:
            raise ValueError("a condition needs 'values' or 'notValues'")
        _patterns(self.values)
        _patterns(self.notValues)
        return self


class Rule(Strict):
    from_: list[From] = Field(default_factory=list, alias="from", max_length=MAX_VALUES)
    to: list[To] = Field(default_factory=list, max_length=MAX_VALUES)
    when: list[Condition] = Field(default_factory=list, max_length=MAX_VALUES)


class AuthorizationPolicySpec(Strict):
    selector: WorkloadSelector | None = None
    action: Literal["ALLOW", "DENY"] = "ALLOW"
    # No rules: an ALLOW allows nothing (so it denies every request to what it selects);
    # a DENY denies nothing. `rules: [{}]` matches every request.
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_VALUES)


class PeerMTLS(Strict):
    mode: Literal["STRICT", "PERMISSIVE"] = "STRICT"


class PeerAuthenticationSpec(Strict):
    """mTLS mode. Mesh-wide in the root namespace, else per namespace; per service with a
    selector naming only `service` (a mode is per inbound port, not per instance)."""

    selector: WorkloadSelector | None = None
    mtls: PeerMTLS = Field(default_factory=PeerMTLS)

    @field_validator("selector")
    @classmethod
    def _service_only(cls, selector: WorkloadSelector | None) -> WorkloadSelector | None:
        if selector is not None and set(selector.matchLabels) != {SERVICE_LABEL}:
            raise ValueError(
                "selector.matchLabels must hold exactly the key 'service' "
                f"(the mode applies to a whole service), got {sorted(selector.matchLabels)}"
            )
        return selector
