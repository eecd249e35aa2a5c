"""Applies a rule's precomputed FilterPlan (proxy/filters.py) to one outbound exchange.

Only rules with filters, session persistence or per-backend filters come here; the
decisions are the pure module's, this edits the exchange's head and target in place.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from gossamer.proxy.filters import (
    FilterPlan,
    HeaderOps,
    redirect_location,
    replace_path,
    set_cookie_ops,
    sticky_key,
)
from gossamer.proxy.http import errors
from gossamer.proxy.routing import BackendRef, Route, choose_backend, point_for_key

if TYPE_CHECKING:
    from gossamer.proxy.http.exchange import Exchange


def apply_filters(
    ex: Exchange, route: Route, plan: FilterPlan, rand: Callable[[], float]
) -> tuple[BackendRef | None, float, int]:
    """Choose the backend (by the session key when the rule has one) and apply the rule's
    and that backend's filters. Returns (backend, fault delay in seconds, fault abort status
    or 0); a redirect is answered here (``ex.finished`` is then true)."""
    head = ex.head
    if plan.redirect is not None:
        path, _, query = ex.upstream_target.partition(b"?")
        location = redirect_location(
            plan.redirect, ex.client.proto, _authority(ex), path, query or None, plan.prefix
        )
        ex.fail(plan.redirect.status, errors.REDIRECT, extra=b"location: " + location + b"\r\n")
        return None, 0.0, 0
    response_ops: list[HeaderOps] = []
    if plan.sticky_header is not None or plan.sticky_cookie is not None:
        key = sticky_key(plan, head.headers)
        if key is None and plan.sticky_cookie is not None:
            # A new session: hand out its cookie, so every later request (on any sidecar)
            # hashes to the same point.
            key = os.urandom(12).hex().encode()
            response_ops.append(set_cookie_ops(plan.sticky_cookie, key))
        point = point_for_key(key) if key is not None else rand()
    else:
        point = rand()
    ref = choose_backend(route, point)
    delay = 0.0
    abort = 0
    for p in (plan, ref.plan if ref is not None else None):
        if p is None:
            continue
        if p.request_headers is not None:
            head.headers = p.request_headers.apply(head.headers)
        if p.rewrite_host is not None:
            head.host = p.rewrite_host
            head.headers = [(n, v) for n, v in head.headers if n != b"host"]
            head.headers.append((b"host", p.rewrite_host))
        if p.rewrite_path is not None:
            path, sep, query = ex.upstream_target.partition(b"?")
            ex.upstream_target = replace_path(p.rewrite_path, path, p.prefix) + sep + query
        if p.response_headers is not None:
            response_ops.append(p.response_headers)
        if p.fault is not None:
            d, status = p.fault.decide(rand(), rand())
            delay = max(delay, d)
            abort = abort or status
    if response_ops:
        ex.response_ops = tuple(response_ops)
    return ref, delay, abort


def _authority(ex: Exchange) -> bytes:
    """The host (and port) the client named: absolute-form target first, then Host."""
    target = ex.head.target
    if target.startswith(b"http://"):
        end = target.find(b"/", 7)
        return target[7:] if end < 0 else target[7:end]
    return ex.head.host
