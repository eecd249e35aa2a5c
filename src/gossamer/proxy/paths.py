"""Request path normalisation, done once on inbound: the authorization check and the app see
the same path. Pure functions, standard library only.

    target, path = normalise_target(b"/a/%2e%2e/admin?x=1")   # (b"/admin?x=1", "/admin")

- percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded; every other
  escape is kept, its hex digits upper-cased;
- empty segments (`//`) are merged, `.` and `..` resolved (never above the root);
- refused with PathError (answered 400): `#` anywhere in the target, a raw or encoded
  backslash, an encoded slash (`%2F`, `%5C`), `%00`, raw control or non-ASCII bytes,
  invalid percent-encoding, encoded bytes that are not valid UTF-8 (overlong forms such as
  `%c0%af`), and segments that are `.` or `..` followed by `;` parameters (`..;`);
- case is kept: matching is case-sensitive;
- the query string passes through untouched.

The path used for matching (`match_path`) additionally drops `;` parameters from every
segment, as servlet containers do before routing, so `/admin;x=1` is checked as `/admin`
(a stricter view than the app's, never a looser one).
"""

from __future__ import annotations

import re

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset(b"0123456789ABCDEFabcdef")
# Already normal: only unreserved and sub-delims / ':' '@' / '/', no '//' or dot segments.
_PLAIN = re.compile(rb"[A-Za-z0-9\-_.~!$&'()*+,=:@/]*").fullmatch
_DOT_SEGMENTS = frozenset({b".", b".."})


class PathError(ValueError):
    """A request target refused before any check: answered 400 with reason `bad_path`."""


def normalise_target(target: bytes) -> tuple[bytes, str]:
    """An origin-form target -> (target to forward, path to match). Raises PathError."""
    if b"#" in target:
        raise PathError("fragment ('#') in the request target")
    path, sep, query = target.partition(b"?")
    if not path.startswith(b"/"):
        raise PathError("request target must start with '/'")
    if _PLAIN(path) is not None and b"//" not in path and b"/." not in path:
        text = path.decode("ascii")
        return target, text  # the common case: nothing to do
    normal = normalise(path)
    return normal + sep + query, match_path(normal)


def normalise(path: bytes) -> bytes:
    """Normalise a path (no query) as the module doc says. Raises PathError."""
    if not path.startswith(b"/"):
        raise PathError("path must start with '/'")
    out: list[bytes] = []
    segments = path.split(b"/")
    last = len(segments) - 1
    for i, raw in enumerate(segments[1:], 1):
        segment = _decode_segment(raw)
        base = segment.split(b";", 1)[0]
        if base in _DOT_SEGMENTS and base != segment:
            raise PathError(f"dot segment with parameters: {segment.decode('ascii')!r}")
        if segment == b"..":
            if out:
                out.pop()
            if i == last:
                out.append(b"")  # "/a/.." is "/" (a trailing slash), not ""
        elif segment == b".":
            if i == last:
                out.append(b"")
        elif segment or i == last:
            out.append(segment)  # empty segments merge away, except a trailing slash
    return b"/" + b"/".join(out)


def match_path(normal: bytes) -> str:
    """The normalised path as authorization matches it: `;` parameters dropped per segment."""
    if b";" not in normal:
        return normal.decode("ascii")
    parts = [s.split(b";", 1)[0] for s in normal.split(b"/")[1:]]
    last = len(parts) - 1
    kept = [p for i, p in enumerate(parts) if p or i == last]  # "/;x/admin" is "/admin"
    return "/" + b"/".join(kept).decode("ascii")


def _decode_segment(raw: bytes) -> bytes:
    """Decode unreserved escapes, upper-case the rest, refuse what the module doc lists."""
    if b"%" not in raw:
        _check_raw(raw)
        return raw
    out = bytearray()
    pending_utf8 = bytearray()  # consecutive encoded bytes >= 0x80, validated together
    i, n = 0, len(raw)
    while i < n:
        byte = raw[i]
        if byte != 0x25:  # '%'
            _flush_utf8(pending_utf8)
            _check_raw(raw[i : i + 1])
            out.append(byte)
            i += 1
            continue
        hex_digits = raw[i + 1 : i + 3]
        if len(hex_digits) != 2 or hex_digits[0] not in _HEX or hex_digits[1] not in _HEX:
            raise PathError("invalid percent-encoding")
        value = int(hex_digits, 16)
        i += 3
        if value == 0:
            raise PathError("encoded NUL (%00) in path")
        if value in (0x2F, 0x5C):
            raise PathError("encoded slash or backslash (%2F, %5C) in path")
        if value >= 0x80:
            pending_utf8.append(value)
        else:
            _flush_utf8(pending_utf8)
        if value in _UNRESERVED:
            out.append(value)
        else:
            out += b"%%%02X" % value
    _flush_utf8(pending_utf8)
    return bytes(out)


def _flush_utf8(pending: bytearray) -> None:
    if pending:
        try:
            pending.decode("utf-8")  # strict: refuses overlong forms and surrogates
        except UnicodeDecodeError:
            raise PathError("encoded bytes are not valid UTF-8 (e.g. an overlong form)") from None
        pending.clear()


def _check_raw(raw: bytes) -> None:
    if b"\\" in raw:
        raise PathError("backslash in path")
    if b"#" in raw:
        raise PathError("fragment ('#') in the request target")
    for byte in raw:
        if byte < 0x21 or byte >= 0x7F:
            raise PathError("control or non-ASCII byte in path (percent-encode it)")
