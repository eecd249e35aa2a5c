"""Edge kinds: Gateway (Kubernetes Gateway API shape), AuthPolicy and RateLimitPolicy
(after Envoy Gateway's SecurityPolicy and BackendTrafficPolicy rate limits).

API keys are hashed at validation: the store and every read show only `sha256`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gossamer.model.common import DNSLabel, Duration, Port, Strict

# Gateway API hostname: a DNS name, or "*." followed by one.
_HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_hostname(value: str) -> str:
    value = value.lower()
    if len(value) > 253 or not _HOSTNAME.match(value):
        raise ValueError("must be a DNS name or '*.' followed by one (e.g. api.example.com)")
    return value


class CertificateRef(Strict):
    kind: Literal["File", "Secret"] = "File"
    cert: str | None = Field(default=None, min_length=1, max_length=4096)
    key: str | None = Field(default=None, min_length=1, max_length=4096)
    name: DNSLabel | None = None

    @model_validator(mode="after")
    def _shape(self) -> CertificateRef:
        if self.kind == "File" and (self.cert is None or self.key is None):
            raise ValueError("a File certificateRef needs both 'cert' and 'key' paths")
        if self.kind == "Secret" and self.name is None:
            raise ValueError("a Secret certificateRef needs 'name'")
        return self


class ListenerTLS(Strict):
    mode: Literal["Terminate"] = "Terminate"
    certificateRefs: list[CertificateRef] = Field(min_length=1, max_length=16)


class Listener(Strict):
    name: DNSLabel
    port: Port
    protocol: Literal["HTTP", "HTTPS"] = "HTTP"
    hostname: str | None = None
    tls: ListenerTLS | None = None
    # gossamer extensions: redirect plain HTTP to an HTTPS listener; HSTS on HTTPS answers.
    httpsRedirect: bool = False
    hstsMaxAge: int | None = Field(default=None, ge=0, le=63_072_000)

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        return None if value is None else check_hostname(value)

    @model_validator(mode="after")
    def _tls(self) -> Listener:
        if self.protocol == "HTTPS" and self.tls is None:
            raise ValueError("an HTTPS listener needs tls.certificateRefs")
        if self.protocol == "HTTP" and self.tls is not None:
            raise ValueError("tls is only allowed on an HTTPS listener")
        return self


class GatewaySpec(Strict):
    gatewayClassName: str | None = None
    listeners: list[Listener] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _unique(self) -> GatewaySpec:
        names = [listener.name for listener in self.listeners]
        if len(set(names)) != len(names):
            raise ValueError("listener names must be unique")
        return self


class SecretSpec(Strict):
    """A TLS certificate held by the control plane (PEM text); served only to gateways."""

    type: Literal["TLS"] = "TLS"
    cert: str = Field(min_length=1, max_length=65536)
    key: str = Field(min_length=1, max_length=65536)


# --- policies ---------------------------------------------------------------------------------


class PolicyTargetRef(Strict):
    group: str | None = None
    kind: Literal["Gateway", "HTTPRoute"]
    name: DNSLabel
    sectionName: DNSLabel | None = None  # a listener of the Gateway


class ClaimToHeader(Strict):
    claim: str = Field(min_length=1, max_length=100)
    header: str

    @field_validator("header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER_NAME.match(value):
            raise ValueError("must be an HTTP header name")
        return value.lower()


class JWTProvider(Strict):
    name: DNSLabel
    issuer: str | None = Field(default=None, max_length=1024)
    audiences: list[str] = Field(default_factory=list)
    remoteJWKS: str | None = Field(default=None, pattern=r"^https?://", max_length=2048)
    jwksMaxAge: Duration = "5m"
    localJWKS: str | None = Field(default=None, max_length=262144)  # JWKS JSON text
    claimToHeaders: list[ClaimToHeader] = Field(default_factory=list)
    leeway: Duration = "30s"

    @model_validator(mode="after")
    def _keys(self) -> JWTProvider:
        if (self.remoteJWKS is None) == (self.localJWKS is None):
            raise ValueError("give exactly one of remoteJWKS or localJWKS")
        return self


class APIKey(Strict):
    name: DNSLabel
    key: str | None = Field(default=None, min_length=16, max_length=512)
    sha256: str | None = None

    @model_validator(mode="after")
    def _hash(self) -> APIKey:
        # Keep only the hash: the store never holds a usable key.
        if self.key is not None:
            self.sha256 = hashlib.sha256(self.key.encode()).hexdigest()
            self.key = None
        if self.sha256 is None or not _SHA256.match(self.sha256):
            raise ValueError("give 'key' (at least 16 characters) or its hex 'sha256'")
        return self


class APIKeyAuth(Strict):
    header: str = "x-api-key"
    keys: list[APIKey] = Field(min_length=1, max_length=10000)
    forwardNameHeader: str | None = "x-api-key-name"

    @field_validator("header", "forwardNameHeader")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER_NAME.match(value):
            raise ValueError("must be an HTTP header name")
        return None if value is None else value.lower()


Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DEFAULT_METHODS: tuple[Method, ...] = ("GET", "POST")
_ORIGIN = re.compile(r"^(\*|https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?)$")


class CORSPolicy(Strict):
    allowOrigins: list[str] = Field(min_length=1, max_length=64)
    allowMethods: list[Method] = Field(default_factory=lambda: list(DEFAULT_METHODS))
    allowHeaders: list[str] = Field(default_factory=list, max_length=64)
    exposeHeaders: list[str] = Field(default_factory=list, max_length=64)
    maxAge: int = Field(default=600, ge=0, le=86400)
    allowCredentials: bool = False

    @field_validator("allowOrigins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _ORIGIN.match(value):
                raise ValueError(
                    f"origin {value!r}: use '*', https://host[:port] or https://*.domain"
                )
        return values

    @field_validator("allowHeaders", "exposeHeaders")
    @classmethod
    def _headers(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _HEADER_NAME.match(value):
                raise ValueError(f"{value!r} is not an HTTP header name")
        return values

    @model_validator(mode="after")
    def _credentials(self) -> CORSPolicy:
        if self.allowCredentials and "*" in self.allowOrigins:
            raise ValueError("allowCredentials needs explicit origins, not '*'")
        return self


class AuthPolicySpec(Strict):
    targetRefs: list[PolicyTargetRef] = Field(min_length=1)
    jwt: list[JWTProvider] = Field(default_factory=list, max_length=8)
    apiKey: APIKeyAuth | None = None
    cors: CORSPolicy | None = None  # preflights are answered before authentication
    # Tokens must carry all of these claims (name -> allowed values), else 403.
    requireClaims: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _some(self) -> AuthPolicySpec:
        if not self.jwt and self.apiKey is None and self.cors is None:
            raise ValueError("an AuthPolicy needs jwt providers, apiKey or cors")
        return self


class ClientKey(Strict):
    type: Literal["ClientIP", "Header", "Claim", "None"] = "ClientIP"
    name: str | None = None  # the header or claim
    trustedProxies: int = Field(default=0, ge=0, le=10)  # X-Forwarded-For hops to trust

    @model_validator(mode="after")
    def _name(self) -> ClientKey:
        if self.type in ("Header", "Claim") and not self.name:
            raise ValueError(f"a {self.type} client key needs 'name'")
        return self


class RateLimit(Strict):
    requests: int = Field(ge=1, le=10_000_000)
    per: Duration = "1s"
    burst: int | None = Field(default=None, ge=1, le=10_000_000)
    clientKey: ClientKey = Field(default_factory=ClientKey)


class RateLimitPolicySpec(Strict):
    targetRefs: list[PolicyTargetRef] = Field(min_length=1)
    limits: list[RateLimit] = Field(min_length=1, max_length=8)
