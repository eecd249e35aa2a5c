"""SPIFFE ID parsing and building by the spec's rules."""

from __future__ import annotations

import re

import pytest

from gossamer.control.ca import SpiffeId, SpiffeIdError, parse_spiffe_id, spiffe_id


@pytest.mark.parametrize(
    ("text", "trust_domain", "path"),
    [
        ("spiffe://cluster.local/ns/default/sa/reviews", "cluster.local", "/ns/default/sa/reviews"),
        ("spiffe://example.org", "example.org", ""),
        ("spiffe://a_b-c.9/Path.With-Upper_Case/x", "a_b-c.9", "/Path.With-Upper_Case/x"),
        ("spiffe://td/..a/b..", "td", "/..a/b.."),
    ],
)
def test_valid_ids_parse(text: str, trust_domain: str, path: str) -> None:
    parsed = parse_spiffe_id(text)
    assert parsed == SpiffeId(trust_domain, path)
    assert str(parsed) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("SPIFFE://td/a", "does not start"),
        ("https://td/a", "does not start"),
        ("spiffe://", "empty"),
        ("spiffe:///a", "empty"),
        ("spiffe://Cluster.Local/a", "lowercase"),
        ("spiffe://td:8443/a", "port"),
        ("spiffe://user@td/a", "userinfo"),
        ("spiffe://td/a?x=1", "query"),
        ("spiffe://td/a#frag", "query or fragment"),
        ("spiffe://td/", "empty segment"),
        ("spiffe://td/a//b", "empty segment"),
        ("spiffe://td/a/./b", "'.'"),
        ("spiffe://td/a/..", "'..'"),
        ("spiffe://td/a%20b", "letters"),
        ("spiffe://td/caf\u00e9", "letters"),
        ("spiffe://t d/a", "lowercase"),
        ("spiffe://" + "a" * 256, "255"),
        ("spiffe://td/" + "a" * 2048, "2048"),
    ],
)
def test_invalid_ids_are_refused_with_the_rule(text: str, why: str) -> None:
    with pytest.raises(SpiffeIdError, match=re.escape(why)):
        parse_spiffe_id(text)


def test_non_string_is_refused() -> None:
    with pytest.raises(SpiffeIdError, match="expected a string"):
        parse_spiffe_id(42)  # type: ignore[arg-type]


def test_workload_id_builder_and_round_trip() -> None:
    text = spiffe_id("cluster.local", "shop", "cart-v2")
    assert text == "spiffe://cluster.local/ns/shop/sa/cart-v2"
    assert parse_spiffe_id(text).workload() == ("shop", "cart-v2")
    assert parse_spiffe_id("spiffe://td/other/shape").workload() is None


@pytest.mark.parametrize(
    ("td", "ns", "svc"),
    [("Cluster.local", "a", "b"), ("td", "", "b"), ("td", "a", "b/c"), ("td", "..", "b")],
)
def test_workload_id_builder_validates_parts(td: str, ns: str, svc: str) -> None:
    with pytest.raises(SpiffeIdError):
        spiffe_id(td, ns, svc)
