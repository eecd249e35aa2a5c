"""SPIFFE IDs: build and validate them by the spec's rules (SPIFFE-ID.md, section 2).

Standard library only, so this module could move to a place the sidecar may import too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEME = "spiffe://"
MAX_ID_BYTES = 2048
MAX_TRUST_DOMAIN_BYTES = 255
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


class SpiffeIdError(ValueError):
    """The text is not a valid SPIFFE ID; the message names the rule it breaks."""


@dataclass(frozen=True, slots=True)
class SpiffeId:
    trust_domain: str
    path: str  # "" for a trust domain's own ID, else "/seg/seg..."

    def __str__(self) -> str:
        return f"{SCHEME}{self.trust_domain}{self.path}"

    def workload(self) -> tuple[str, str] | None:
        """(namespace, service) for the mesh's `/ns/<ns>/sa/<service>` shape, else None."""
        parts = self.path.split("/")
        if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa":
            return parts[2], parts[4]
        return None


def validate_trust_domain(trust_domain: str) -> str:
    if not trust_domain:
        raise SpiffeIdError("trust domain is empty")
    if len(trust_domain.encode()) > MAX_TRUST_DOMAIN_BYTES:
        raise SpiffeIdError(f"trust domain is longer than {MAX_TRUST_DOMAIN_BYTES} bytes")
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        raise SpiffeIdError(
            f"trust domain {trust_domain!r} may only contain lowercase letters, digits, "
            "'.', '-' and '_' (no port, userinfo or upper case)"
        )
    return trust_domain


def validate_segment(segment: str) -> str:
    if not segment:
        raise SpiffeIdError("path has an empty segment")
    if segment in (".", ".."):
        raise SpiffeIdError(f"path segment {segment!r} is not allowed")
    if not _SEGMENT.fullmatch(segment):
        raise SpiffeIdError(
            f"path segment {segment!r} may only contain letters, digits, '.', '-' and '_'"
        )
    return segment


def parse_spiffe_id(text: str) -> SpiffeId:
    """Parse and validate; raises SpiffeIdError (a ValueError) naming what is wrong."""
    if not isinstance(text, str):
        raise SpiffeIdError(f"expected a string, got {type(text).__name__}")
    if len(text.encode()) > MAX_ID_BYTES:
        raise SpiffeIdError(f"SPIFFE ID is longer than {MAX_ID_BYTES} bytes")
    if not text.startswith(SCHEME):
        # The scheme is case-sensitive by the spec ("spiffe", lower case).
        raise SpiffeIdError(f"{text[:64]!r} does not start with {SCHEME!r}")
    rest = text[len(SCHEME) :]
    if "?" in rest or "#" in rest:
        raise SpiffeIdError("SPIFFE IDs carry no query or fragment")
    slash = rest.find("/")
    trust_domain, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    if "@" in trust_domain:
        raise SpiffeIdError("SPIFFE IDs carry no userinfo")
    if ":" in trust_domain:
        raise SpiffeIdError("SPIFFE IDs carry no port")
    validate_trust_domain(trust_domain)
    if path:
        for segment in path[1:].split("/"):
            validate_segment(segment)
    return SpiffeId(trust_domain, path)


def spiffe_id(trust_domain: str, namespace: str, service: str) -> str:
    """The mesh's workload ID: `spiffe://<trust-domain>/ns/<namespace>/sa/<service>`."""
    validate_trust_domain(trust_domain)
    validate_segment(namespace)
    validate_segment(service)
    return f"{SCHEME}{trust_domain}/ns/{namespace}/sa/{service}"
