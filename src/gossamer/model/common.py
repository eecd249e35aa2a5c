"""Shared field types: names, durations, label maps, object references."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

API_VERSION = "gossamer.dev/v1"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
# Gateway API duration (GEP-2257): up to four number+unit pairs, units h, m, s, ms.
_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_DURATION_PART = re.compile(r"([0-9]{1,5})(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def check_dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            "must be a DNS label: 1-63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit"
        )
    return value


def check_labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if len(key) > 253 or not _LABEL_KEY.match(key):
            raise ValueError(
                f"label key {key!r} must be [prefix/]name of letters, digits, '-', '_', '.'"
            )
        if len(val) > 63 or not _LABEL_VALUE.match(val):
            raise ValueError(
                f"label value {val!r} for {key!r} must be at most 63 letters, digits, '-', '_', '.'"
            )
    return value


def check_duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError("must be a duration like '500ms', '10s', '1m30s' (units h, m, s, ms)")
    return value


def duration_seconds(value: str) -> float:
    """'1m30s' -> 90.0. The value must already have passed check_duration."""
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))


DNSLabel = Annotated[str, AfterValidator(check_dns_label)]
Labels = Annotated[dict[str, str], AfterValidator(check_labels)]
Duration = Annotated[str, AfterValidator(check_duration)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Strict(BaseModel):
    """Base for every spec object: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ServiceRef(Strict):
    """A reference to a Service, in the Gateway API's shape (group/kind/name/namespace/port)."""

    group: str | None = None
    kind: str = "Service"
    name: DNSLabel
    namespace: DNSLabel | None = None
    port: Port | None = None


def dump(model: BaseModel) -> dict[str, Any]:
    """The canonical JSON form stored and served: aliases, no unset/None noise."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
