"""Route matching and weighted backend choice (Gateway API HTTPRoute semantics). Pure.

Routes arrive already in precedence order (docs/protocol.md); each is compiled once at
snapshot load (regexes compiled, header names as lower-case bytes, weights cumulated) so a
request costs a few comparisons per route.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from gossamer.proxy.balance import hash64
from gossamer.proxy.filters import (
    BACKEND_FILTERS,
    PREFIX_MATCH,
    FilterPlan,
    compile_filters,
)

# RE2: linear-time matching, no runaway patterns from config. Loaded on the first regex
# match a snapshot asks for: its C++ library costs an idle sidecar ~3 MB otherwise.
REGEX_ENGINE = "re2" if importlib.util.find_spec("re2") is not None else "re"


@functools.cache
def _regex_engine() -> tuple[Any, Any]:
    """(the regex module, RE2's ANCHOR_BOTH for the raw Match entry point or None)."""
    if REGEX_ENGINE == "re2":
        import re2

        return re2, _re2_anchor_both(re2)
    import re  # pragma: no cover - google-re2 is a declared dependency

    return re, None  # pragma: no cover


def _re2_anchor_both(regex_engine: Any) -> Any:
    """RE2's raw Match entry point skips the wrapper's per-call work (about 4x faster). It is
    not public API, so it is used only if it is there and answers a self-check."""
    try:
        from re2 import _re2

        anchor = _re2.RE2.Anchor.ANCHOR_BOTH
        probe = regex_engine.compile(b"a+")._regexp.Match
        if probe(anchor, b"aa", 0, 2)[0] == (0, 2) and probe(anchor, b"ab", 0, 2)[0][0] == -1:
            return anchor
    except Exception:  # pragma: no cover - older or newer wrapper: use the public API
        pass
    return None


if TYPE_CHECKING:
    from gossamer.proxy.snapshot import Backend, ServiceView

PATH_EXACT, PATH_PREFIX, PATH_REGEX = 1, 2, 3
_PATH_KINDS = {"Exact": PATH_EXACT, "PathPrefix": PATH_PREFIX, "RegularExpression": PATH_REGEX}
_MASK64 = (1 << 64) - 1
_NO_PARAMS: dict[str, str] = {}


class FullMatcher:
    """A compiled regular expression that must match the whole (UTF-8) input.

    ``possiblematchrange`` gives bounds every match lies within, so most non-matching
    inputs are rejected by two byte comparisons without entering RE2.
    """

    __slots__ = ("_anchor", "_compiled", "_high", "_low", "_raw_match", "pattern")

    def __init__(self, pattern: str, field: str) -> None:
        self.pattern = pattern
        regex_engine, self._anchor = _regex_engine()
        try:
            compiled = regex_engine.compile(pattern.encode("utf-8"))
        except Exception as exc:  # re2.error / re.error: both name the problem
            raise ValueError(f"{field}: invalid regular expression {pattern!r}: {exc}") from None
        self._compiled = compiled
        self._low: bytes | None = None
        self._high = b""
        self._raw_match = None
        if self._anchor is not None:
            self._raw_match = compiled._regexp.Match
            try:
                self._low, self._high = compiled.possiblematchrange(64)
            except Exception:  # no useful bounds (e.g. a leading .*): always ask RE2
                self._low = None

    def fullmatch(self, data: bytes) -> bool:
        low = self._low
        if low is not None and (data < low or data > self._high):
            return False
        raw = self._raw_match
        if raw is not None:
            return bool(raw(self._anchor, data, 0, len(data))[0][0] != -1)
        return self._compiled.fullmatch(data) is not None


def compile_regex(pattern: str, field: str) -> FullMatcher:
    return FullMatcher(pattern, field)


class BackendRef:
    """One weighted backend of a route; ``backend`` is the resolved endpoint set."""

    __slots__ = ("backend", "labels", "labels_key", "plan", "seed", "service", "weight")

    def __init__(
        self,
        service: str,
        labels: dict[str, str],
        weight: int,
        plan: FilterPlan | None = None,
    ) -> None:
        self.service = service
        self.plan = plan  # this backend's own filters (backendRefs[].filters), if any
        self.labels = labels
        self.labels_key = tuple(sorted(labels.items()))
        self.weight = weight
        self.seed = 0  # rendezvous seed; set by Route.linked when three or more share a rule
        self.backend: Backend | None = None

    def __repr__(self) -> str:
        return f"BackendRef({self.service!r}, {self.labels!r}, weight={self.weight})"


class Mirror:
    __slots__ = ("backend", "percent", "service")

    def __init__(self, service: str, percent: int) -> None:
        self.service = service
        self.percent = percent
        self.backend: Backend | None = None


class RetryPolicy:
    __slots__ = ("attempts", "backoff", "codes")

    def __init__(self, attempts: int, backoff: float, codes: frozenset[int]) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.codes = codes


class Route:
    """One (rule, match) pair of an HTTPRoute, compiled."""

    __slots__ = (
        "_cumulative",
        "_total",
        "backend_invalid",
        "backend_plans",
        "backend_request_timeout",
        "backend_specs",
        "backends",
        "filters",
        "headers",
        "method",
        "mirror_specs",
        "mirrors",
        "path_kind",
        "path_prefix",
        "path_regex",
        "path_value",
        "plan",
        "query",
        "request_timeout",
        "retry",
        "route",
        "rule",
    )

    def __init__(self) -> None:
        self.route = ""
        self.rule = 0
        self.path_kind = 0
        self.path_value = ""
        self.path_prefix = ""  # PathPrefix value + "/": segment-wise prefix test
        self.path_regex: FullMatcher | None = None
        # (lower-case name bytes, exact value bytes or None, compiled regex or None)
        self.headers: tuple[tuple[bytes, bytes | None, FullMatcher | None], ...] = ()
        self.query: tuple[tuple[str, str | None, FullMatcher | None], ...] = ()
        self.method: str | None = None
        self.backend_specs: tuple[tuple[str, dict[str, str], int], ...] = ()
        self.backend_plans: tuple[FilterPlan | None, ...] = ()  # parallel to backend_specs
        # Parallel to backend_specs: the ref names nothing valid (not a Service), 500.
        self.backend_invalid: tuple[bool, ...] = ()
        # Filters and session persistence, precomputed; None when the rule has neither (nor
        # per-backend filters), so plain requests pay one test (proxy/filters.py).
        self.plan: FilterPlan | None = None
        self.mirror_specs: tuple[tuple[str, int], ...] = ()
        self.backends: tuple[BackendRef, ...] = ()
        self.mirrors: tuple[Mirror, ...] = ()
        self.filters: tuple[dict[str, Any], ...] = ()  # as on the wire (docs/protocol.md)
        self.request_timeout: float | None = None
        self.backend_request_timeout: float | None = None
        self.retry: RetryPolicy | None = None
        self._cumulative: tuple[float, ...] = ()
        self._total = 0

    def linked(self, resolve: Callable[[str, dict[str, str]], Backend]) -> Route:
        """A copy sharing the compiled matchers, with backends resolved by ``resolve``."""
        clone = Route()
        for name in Route.__slots__:
            setattr(clone, name, getattr(self, name))
        backends = []
        for (service, labels, weight), plan, invalid in zip(
            self.backend_specs, self.backend_plans, self.backend_invalid, strict=True
        ):
            ref = BackendRef(service, labels, weight, plan)
            backend = resolve(service, labels)
            # A ref naming nothing valid keeps its share with no backend: answered 500
            # invalid_backend (Gateway API), unlike an empty subset's 503.
            ref.backend = None if invalid or backend.missing else backend
            backends.append(ref)
        mirrors = []
        for service, percent in self.mirror_specs:
            mirror = Mirror(service, percent)
            mirror.backend = resolve(service, {})
            mirrors.append(mirror)
        clone.mirrors = tuple(mirrors)
        # Stable identity order, not weight order: re-weighting must not reorder, or hashed
        # points would jump between backends (see choose_backend).
        live = sorted(
            (b for b in backends if b.weight > 0), key=lambda b: (b.service, b.labels_key)
        )
        if len(live) >= 3:
            # Seeded by identity, so adding or removing a sibling moves no one else's points.
            for b in live:
                b.seed = hash64(repr((b.service, b.labels_key)).encode())
        total = sum(b.weight for b in live)
        running = 0
        cumulative = []
        for b in live:
            running += b.weight
            cumulative.append(running / total)
        clone._cumulative = tuple(cumulative)
        clone._total = total
        clone.backends = tuple(live)
        return clone

    def matches(
        self, method: str, path: str, params: dict[str, str], headers: dict[bytes, bytes]
    ) -> bool:
        kind = self.path_kind
        if kind == PATH_PREFIX:
            prefix = self.path_prefix
            if prefix != "//" and path != self.path_value and not path.startswith(prefix):
                return False
        elif kind == PATH_EXACT:
            if path != self.path_value:
                return False
        elif kind == PATH_REGEX:
            regex = self.path_regex
            if regex is None or not regex.fullmatch(path.encode("utf-8", "surrogateescape")):
                return False
        if self.method is not None and method != self.method:
            return False
        for name, exact, pattern in self.headers:
            value = headers.get(name)
            if value is None:
                return False
            if exact is not None:
                if value != exact:
                    return False
            elif pattern is None or not pattern.fullmatch(value):
                return False
        if self.query:
            for qname, qexact, qpattern in self.query:
                qvalue = params.get(qname)
                if qvalue is None:
                    return False
                if qexact is not None:
                    if qvalue != qexact:
                        return False
                elif qpattern is None or not qpattern.fullmatch(
                    qvalue.encode("utf-8", "surrogateescape")
                ):
                    return False
        return True


def compile_route(wire: Any, field: str) -> Route:
    """A route from its wire form (docs/protocol.md ENTRY.routes[i]); ValueError naming the
    field on anything malformed. Backends are resolved later by ``Route.linked``."""
    w = _mapping(wire, field)
    route = Route()
    route.route = _str(w.get("route", ""), f"{field}.route")
    route.rule = _int(w.get("rule", 0), f"{field}.rule")
    match = _mapping(_or(w.get("match"), {}), f"{field}.match")
    path = match.get("path")
    if path is not None:
        path = _mapping(path, f"{field}.match.path")
        kind_name = path.get("type", "PathPrefix")
        kind = _PATH_KINDS.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            raise ValueError(
                f"{field}.match.path.type: {kind_name!r} is not one of {', '.join(_PATH_KINDS)}"
            )
        value = _str(path.get("value", "/"), f"{field}.match.path.value")
        route.path_kind = kind
        if kind == PATH_REGEX:
            route.path_regex = compile_regex(value, f"{field}.match.path.value")
        elif kind == PATH_PREFIX:
            value = value.rstrip("/") or "/"  # Gateway API ignores a trailing slash
        route.path_value = value
        route.path_prefix = value + "/"
    headers: list[tuple[bytes, bytes | None, FullMatcher | None]] = []
    for i, h in enumerate(_list(_or(match.get("headers"), []), f"{field}.match.headers")):
        hf = f"{field}.match.headers[{i}]"
        h = _mapping(h, hf)
        name = _str(h.get("name"), f"{hf}.name").lower().encode("latin-1", "replace")
        hvalue = _str(h.get("value"), f"{hf}.value").encode("utf-8")
        kind_name = h.get("type", "Exact")
        if kind_name == "Exact":
            headers.append((name, hvalue, None))
        elif kind_name == "RegularExpression":
            headers.append((name, None, compile_regex(hvalue.decode(), f"{hf}.value")))
        else:
            raise ValueError(f"{hf}.type: {kind_name!r} is not one of Exact, RegularExpression")
    route.headers = tuple(headers)
    query: list[tuple[str, str | None, FullMatcher | None]] = []
    for i, q in enumerate(_list(_or(match.get("queryParams"), []), f"{field}.match.queryParams")):
        qf = f"{field}.match.queryParams[{i}]"
        q = _mapping(q, qf)
        qname = _str(q.get("name"), f"{qf}.name")
        qvalue = _str(q.get("value"), f"{qf}.value")
        kind_name = q.get("type", "Exact")
        if kind_name == "Exact":
            query.append((qname, qvalue, None))
        elif kind_name == "RegularExpression":
            query.append((qname, None, compile_regex(qvalue, f"{qf}.value")))
        else:
            raise ValueError(f"{qf}.type: {kind_name!r} is not one of Exact, RegularExpression")
    route.query = tuple(query)
    method = match.get("method")
    route.method = None if method is None else _str(method, f"{field}.match.method").upper()
    specs = []
    prefix = (
        route.path_value.encode("utf-8") if route.path_kind in (PATH_EXACT, PATH_PREFIX) else b"/"
    )
    plans = []
    invalid = []
    for i, b in enumerate(_list(_or(w.get("backends"), []), f"{field}.backends")):
        bf = f"{field}.backends[{i}]"
        b = _mapping(b, bf)
        backend_filters = _list(_or(b.get("filters"), []), f"{bf}.filters")
        plans.append(compile_filters(backend_filters, f"{bf}.filters", prefix, BACKEND_FILTERS))
        service = _service_key(b.get("service"), f"{bf}.service")
        labels = _labels(_or(b.get("labels"), {}), f"{bf}.labels")
        weight = _int(b.get("weight", 1), f"{bf}.weight")
        if weight < 0:
            raise ValueError(f"{bf}.weight: {weight} is negative; weights must be >= 0")
        specs.append((service, labels, weight))
        invalid.append(b.get("invalid") is not None)
    if specs and not any(weight > 0 for _, _, weight in specs):
        raise ValueError(f"{field}.backends: all weights are zero; at least one must be > 0")
    route.backend_specs = tuple(specs)
    route.backend_invalid = tuple(invalid)
    filters: list[dict[str, Any]] = []
    mirrors = []
    for i, f in enumerate(_list(_or(w.get("filters"), []), f"{field}.filters")):
        ff = f"{field}.filters[{i}]"
        f = _mapping(f, ff)
        _str(f.get("type"), f"{ff}.type")
        if f["type"] == "RequestMirror":
            m = _mapping(f.get("requestMirror"), f"{ff}.requestMirror")
            service = _service_key(m.get("service"), f"{ff}.requestMirror.service")
            mirrors.append((service, _int(m.get("percent", 100), f"{ff}.requestMirror.percent")))
        filters.append(dict(f))
    route.filters = tuple(filters)
    route.mirror_specs = tuple(mirrors)
    route.backend_plans = tuple(plans)
    route.plan = compile_filters(
        filters,
        f"{field}.filters",
        prefix,
        sticky=w.get("sessionPersistence"),
        sticky_field=f"{field}.sessionPersistence",
    )
    if route.plan is None and any(plans):
        route.plan = FilterPlan(prefix)  # empty: only the chosen backend's filters apply
    if route.path_kind == PATH_REGEX and _rewrites_prefix(route.plan, plans):
        raise ValueError(f"{field}.filters: ReplacePrefixMatch needs a PathPrefix or Exact match")
    timeouts = _mapping(_or(w.get("timeouts"), {}), f"{field}.timeouts")
    route.request_timeout = _opt_seconds(timeouts.get("request"), f"{field}.timeouts.request")
    route.backend_request_timeout = _opt_seconds(
        timeouts.get("backendRequest"), f"{field}.timeouts.backendRequest"
    )
    retry = w.get("retry")
    if retry is not None:
        rf = f"{field}.retry"
        retry = _mapping(retry, rf)
        codes = frozenset(
            _int(c, f"{rf}.codes[{i}]")
            for i, c in enumerate(_list(retry.get("codes", []), f"{rf}.codes"))
        )
        backoff = _opt_seconds(retry.get("backoff"), f"{rf}.backoff")
        route.retry = RetryPolicy(
            _int(retry.get("attempts", 0), f"{rf}.attempts"),
            0.025 if backoff is None else backoff,
            codes,
        )
    return route


def _rewrites_prefix(plan: FilterPlan | None, plans: Sequence[FilterPlan | None]) -> bool:
    for p in (plan, *plans):
        if p is None:
            continue
        changes = (p.rewrite_path, p.redirect.path if p.redirect is not None else None)
        if any(c is not None and c.kind == PREFIX_MATCH for c in changes):
            return True
    return False


# --- wire-shape checks: each names the field and what was expected -------------------------


def _or(value: Any, default: Any) -> Any:
    """``default`` only for a missing or null field: a wrong-typed falsy value is an error."""
    return default if value is None else value


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{field}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{field}: expected a list, got {type(value).__name__}")
    return list(value)


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a string, got {value!r}")
    return value


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}: expected an integer, got {value!r}")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field}: expected a finite number, got {value!r}")
    return float(value)


def _opt_seconds(value: Any, field: str) -> float | None:
    if value is None:
        return None
    seconds = _number(value, field)
    if seconds < 0:
        raise ValueError(f"{field}: expected seconds >= 0, got {value!r}")
    return seconds


def _labels(value: Any, field: str) -> dict[str, str]:
    """Checked labels; equal label sets share one (read-only) dict to keep memory small."""
    labels = _mapping(value, field)
    for key, item in labels.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ValueError(f"{field}: labels must map strings to strings, got {key!r}: {item!r}")
    return _shared_labels(tuple(sorted(labels.items())))


@lru_cache(maxsize=4096)
def _shared_labels(items: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(items)


def _service_key(value: Any, field: str) -> str:
    key = _str(value, field)
    namespace, sep, name = key.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"{field}: expected a service key 'namespace/name', got {key!r}")
    return key


def _parse_query(query: str | None) -> dict[str, str]:
    """First value of each name (Gateway API), percent-decoded."""
    params: dict[str, str] = {}
    if not query:
        return params
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = unquote_plus(name)
        if name not in params:
            params[name] = unquote_plus(value)
    return params


def _text(value: str | bytes) -> str:
    # surrogateescape: any byte round-trips, so regexes see exactly what was sent.
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def match_route(
    view: ServiceView,
    method: str | bytes,
    path: str | bytes,
    query: str | bytes | None,
    headers: Sequence[tuple[bytes, bytes]],
) -> Route | None:
    """The first route of ``view`` matching the request, or None.

    ``path`` is the path without the query string, as sent (not percent-decoded);
    ``headers`` are (lower-case name, value) byte pairs; repeated headers are joined with
    ", " as HTTP allows. None when nothing matches — callers tell "no routes at all" (use
    the service itself) from "no route matched" (404 no_route) by ``view.routes``.
    """
    routes = view.routes
    if not routes:
        return None
    method_s = _text(method)
    path_s = _text(path)
    wanted = view.header_names
    found: dict[bytes, bytes] = {}
    if wanted:
        for name, value in headers:
            if name in wanted:
                previous = found.get(name)
                found[name] = value if previous is None else previous + b", " + value
    params = _parse_query(_text(query)) if query and view.needs_query else _NO_PARAMS
    for route in routes:
        if route.matches(method_s, path_s, params, found):
            return route
    return None


def choose_backend(route: Route, point: float) -> BackendRef | None:
    """The backend for ``point`` in [0, 1): random for plain traffic, or ``point_for_key``
    of a sticky key. None when the route has no backend (e.g. a redirect-only rule).

    Up to two backends (baseline + canary): cumulative weights in a fixed identity order,
    so changing weights only moves points between the two, toward the one widened. Three
    or more: weighted rendezvous hashing seeded by the point, which keeps the same promise
    for any one backend widened (a single cumulative split cannot: widening the last of
    three would shift the first boundary too).
    """
    backends = route.backends
    n = len(backends)
    if n == 1:
        return backends[0]
    if n == 2:
        return backends[0] if point < route._cumulative[0] else backends[1]
    if n == 0:
        return None
    seed = int(point * 18446744073709551616.0) & _MASK64
    best = backends[0]
    best_score = math.inf
    for backend in backends:
        u = (_mix64(seed ^ backend.seed) + 0.5) / 18446744073709551616.0
        score = -math.log(u) / backend.weight
        if score < best_score:
            best, best_score = backend, score
    return best


def _mix64(x: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit mix."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK64
    return x ^ (x >> 31)


def point_for_key(key: bytes) -> float:
    """A stable point in [0, 1) for a sticky key (e.g. a user id header)."""
    return hash64(key) / 18446744073709551616.0
