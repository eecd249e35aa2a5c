"""Path normalisation: a corpus of attack paths against a DENY on /admin, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossamer.proxy.authz import evaluate, parse_policies
from gossamer.proxy.paths import PathError, match_path, normalise, normalise_target

DENY_ADMIN = parse_policies(
    [
        {
            "name": "default/deny-admin",
            "action": "DENY",
            "rules": [{"to": [{"paths": ["/admin", "/admin/*"]}]}],
        }
    ],
    "authz",
)

# Each of these reaches /admin on some server once decoded, merged, resolved or stripped.
ATTACKS = [
    b"/admin",
    b"/admin/",
    b"/admin/users",
    b"/admin?x=1",
    b"//admin",
    b"///admin//users",
    b"/./admin",
    b"/x/../admin",
    b"/x/./../admin/",
    b"/../admin",
    b"/../../admin/users",
    b"/%61dmin",
    b"/%61%64%6d%69%6e",
    b"/%41DMIN/../admin",
    b"/x/%2e%2e/admin",
    b"/x/%2E%2E/admin",
    b"/x/.%2e/admin",
    b"/x/%2e./admin",
    b"/%2e/admin",
    b"/x/%252e%252e/../../admin",
    b"/admin;jsessionid=1",
    b"/admin;x=1/users",
    b"/;x/admin",
    b"/x;y/../admin",
    b"//;/admin",
    b"/admin/%7e/..",
    b"/admin%2f",
    b"/x%2F..%2Fadmin",
    b"/x%2f..%2fadmin",
    b"/x%5C..%5Cadmin",
    b"/x\\..\\admin",
    b"/x/..;/admin",
    b"/x/.;/admin",
    b"/x/%2e%2e;/admin",
    b"/admin%00",
    b"/admin%00.png",
    b"/x/%c0%ae%c0%ae/admin",
    b"/x%c0%af..%c0%afadmin",
    b"/x%e0%80%afadmin",
    b"/admin#",
    b"/public#/../admin",
    b"/x/%zz/../admin",
    b"/x/%2/../admin",
    b"/admin%",
    b"/x/%u002e%u002e/admin",
    b"/\xc0\xaf/admin",
]


def denied_or_refused(target: bytes) -> bool:
    try:
        _, path = normalise_target(target)
    except PathError:
        return True
    return not evaluate(DENY_ADMIN, {}, None, "GET", path).allowed


@pytest.mark.parametrize("target", ATTACKS, ids=lambda t: t.decode("latin-1"))
def test_no_attack_path_reaches_admin(target: bytes) -> None:
    assert denied_or_refused(target)


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        (b"/", b"/"),
        (b"/public/page", b"/public/page"),
        (b"/a//b/./c/../d?q=%2F#", None),
        (b"/a//b/./c/../d?q=%2F&x=..", b"/a/b/d?q=%2F&x=.."),
        (b"/%7euser/%41", b"/~user/A"),
        (b"/caf%c3%a9", b"/caf%C3%A9"),
        (b"/a/b/..", b"/a/"),
        (b"/a/.", b"/a/"),
        (b"/a/b/", b"/a/b/"),
        (b"/%2561dmin", b"/%2561dmin"),
        (b"/a%20b", b"/a%20b"),
        (b"/ADMIN", b"/ADMIN"),  # case-sensitive: not /admin
        (b"/admins", b"/admins"),
    ],
)
def test_forwarded_target(target: bytes, forwarded: bytes | None) -> None:
    if forwarded is None:
        with pytest.raises(PathError):
            normalise_target(target)
    else:
        assert normalise_target(target)[0] == forwarded


def test_case_variants_are_distinct_paths() -> None:
    for target in (b"/ADMIN", b"/Admin", b"/admins", b"/administrator"):
        assert not denied_or_refused(target), target


def test_params_are_dropped_for_matching_only() -> None:
    assert normalise_target(b"/admin;x=1") == (b"/admin;x=1", "/admin")
    assert match_path(b"/a;b/c;d/") == "/a/c/"


# --- properties ---------------------------------------------------------------------------------

PATH_ALPHABET = st.sampled_from(
    [
        "a",
        "admin",
        "/",
        "//",
        ".",
        "..",
        "%2e",
        "%2E",
        "%61",
        "%41",
        ";",
        ";x=1",
        "%25",
        "%2f",
        "%5c",
        "\\",
        "%00",
        "%c0%af",
        "%c3%a9",
        "~",
        "%7E",
        "#",
        "%",
        "?",
        "A",
        "-",
    ]
)
paths = st.lists(PATH_ALPHABET, max_size=12).map(lambda parts: "/" + "".join(parts))


@settings(max_examples=600, deadline=None)
@given(paths)
def test_normalise_is_idempotent(path: str) -> None:
    raw = path.split("?", 1)[0].encode()
    try:
        once = normalise(raw)
    except PathError:
        return
    assert normalise(once) == once
    assert normalise_target(once)[0] == once


@settings(max_examples=600, deadline=None)
@given(paths)
def test_any_accepted_path_that_is_admin_is_denied(path: str) -> None:
    target = path.encode()
    try:
        forwarded, matched = normalise_target(target)
    except PathError:
        return
    forwarded_path = forwarded.split(b"?", 1)[0].decode()
    # What any server could make of it: the forwarded path, with or without ';' params.
    for seen in (forwarded_path, matched):
        if seen == "/admin" or seen.startswith("/admin/"):
            assert not evaluate(DENY_ADMIN, {}, None, "GET", matched).allowed, path
