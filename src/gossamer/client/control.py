"""ControlClient: one method per operator endpoint of docs/protocol.md, dicts in and out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from gossamer.client.credentials import operator_token
from gossamer.client.errors import ApiError, ControlUnreachable

API = "/api/v1"
Document = dict[str, Any]
Selector = Mapping[str, str] | str | None


def label_selector(selector: Selector) -> str | None:
    """{"version": "v2"} or "version=v2" -> "version=v2" (the query form the API takes)."""
    if selector is None or isinstance(selector, str):
        return selector or None
    return ",".join(f"{k}={v}" for k, v in selector.items()) or None


def _seg(value: str) -> str:
    # Names are DNS labels once validated, but an operator may type anything: keep it one segment.
    return quote(value, safe="")


class ControlClient:
    """Synchronous client of the control plane. Use as a context manager or call close()."""

    def __init__(self, base_url: str, timeout: float = 10.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # Explicit, GOSSAMER_TOKEN, or the local admin credential (client/credentials.py).
        token = operator_token(self.base_url, token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException:
            raise ControlUnreachable(self.base_url, f"no answer within {self.timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise ControlUnreachable(self.base_url, f"connection failed ({exc})") from None
        except httpx.TransportError as exc:
            raise ControlUnreachable(
                self.base_url, f"{type(exc).__name__}: {exc or 'connection lost'}"
            ) from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | None] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Document:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        with self._transport_errors():
            response = self._http.request(
                method,
                path,
                params=query,
                json=body,
                timeout=timeout if timeout is not None else self.timeout,
            )
        if response.status_code >= 400:
            raise ApiError.from_body(response.status_code, response.content)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ApiError(
                response.status_code,
                "InvalidResponse",
                f"{method} {path} answered with a body that is not a JSON object",
            )
        return answer

    # --- resources --------------------------------------------------------------------------

    def version(self) -> Document:
        return self._request("GET", f"{API}/version")

    def list(
        self, plural: str, namespace: str | None = None, selector: Selector = None
    ) -> Document:
        """A List document; across every namespace when namespace is None."""
        path = (
            f"{API}/{_seg(plural)}"
            if namespace is None
            else f"{API}/namespaces/{_seg(namespace)}/{_seg(plural)}"
        )
        return self._request("GET", path, params={"labelSelector": label_selector(selector)})

    def _item_path(self, plural: str, namespace: str, name: str) -> str:
        return f"{API}/namespaces/{_seg(namespace)}/{_seg(plural)}/{_seg(name)}"

    def get(self, plural: str, namespace: str, name: str) -> Document:
        return self._request("GET", self._item_path(plural, namespace, name))

    def create(self, plural: str, namespace: str, document: Document) -> Document:
        path = f"{API}/namespaces/{_seg(namespace)}/{_seg(plural)}"
        return self._request("POST", path, body=document)

    def replace(self, plural: str, namespace: str, name: str, document: Document) -> Document:
        return self._request("PUT", self._item_path(plural, namespace, name), body=document)

    def delete(self, plural: str, namespace: str, name: str) -> Document:
        """Delete one resource; returns the deleted document."""
        return self._request("DELETE", self._item_path(plural, namespace, name))

    def apply(
        self,
        documents: Iterable[Any],
        *,
        dry_run: bool = False,
        wait_seconds: float | None = None,
    ) -> Document:
        """All-or-nothing apply of raw documents; the server validates them.

        With wait_seconds the server holds the answer until affected proxies ACK (or time runs
        out), so this request's own timeout is stretched by as much.
        """
        body: dict[str, Any] = {"documents": list(documents), "dryRun": dry_run}
        timeout = self.timeout
        if wait_seconds is not None:
            body["waitSeconds"] = wait_seconds
            timeout += wait_seconds
        return self._request("POST", f"{API}/apply", body=body, timeout=timeout)

    def delete_many(self, references: Iterable[tuple[str, str, str]]) -> Document:
        """All-or-nothing delete of (Kind, namespace, name) references."""
        documents = [
            {"kind": kind, "metadata": {"name": name, "namespace": namespace}}
            for kind, namespace, name in references
        ]
        return self._request("POST", f"{API}/delete", body={"documents": documents})

    def watch(
        self, from_revision: int | None = None, kinds: Iterable[str] | None = None
    ) -> Iterator[Document]:
        """Yield change events ({"type", "revision", "object"}) until the stream ends.

        Stops with ApiError(410) when from_revision is compacted away. No read timeout:
        a quiet mesh sends nothing.
        """
        params: dict[str, str] = {}
        if from_revision is not None:
            params["fromRevision"] = str(from_revision)
        if kinds:
            params["kinds"] = ",".join(kinds)
        timeout = httpx.Timeout(self.timeout, read=None)
        with self._transport_errors():
            with self._http.stream("GET", f"{API}/watch", params=params, timeout=timeout) as resp:
                if resp.status_code >= 400:
                    raise ApiError.from_body(resp.status_code, resp.read())
                for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        raise ApiError(
                            resp.status_code, "InvalidResponse", "watch stream line is not JSON"
                        ) from None
                    yield event

    # --- traffic: splits, canaries, compiled entries -----------------------------------------

    def split(
        self,
        namespace: str,
        service: str,
        weights: Mapping[str, int],
        *,
        label: str = "version",
        route: str | None = None,
        wait_seconds: float | None = None,
    ) -> Document:
        """Weights over the service's subsets by `label`, written into its HTTPRoute."""
        body: dict[str, Any] = {"weights": dict(weights), "label": label}
        if route:
            body["route"] = route
        timeout = self.timeout
        if wait_seconds is not None:
            body["waitSeconds"] = wait_seconds
            timeout += wait_seconds
        path = f"{API}/namespaces/{_seg(namespace)}/services/{_seg(service)}/split"
        return self._request("POST", path, body=body, timeout=timeout)

    def canary(
        self, namespace: str, name: str, action: str, spec: Document | None = None
    ) -> Document:
        """start (with spec), status, promote, abort, pause or resume; returns the Canary."""
        path = f"{API}/namespaces/{_seg(namespace)}/canaries/{_seg(name)}/{_seg(action)}"
        if action == "status":
            return self._request("GET", path)
        return self._request("POST", path, body={"spec": spec} if action == "start" else {})

    def service_snapshot(self, namespace: str, service: str) -> Document:
        """The snapshot line a proxy watching only this service would get (its compiled ENTRY
        under services["ns/name"], plus the entries its routes need)."""
        path = f"{API}/snapshot/namespaces/{_seg(namespace)}/services/{_seg(service)}"
        return self._request("GET", path)

    # --- discovery and proxies ----------------------------------------------------------------

    def services(self) -> Document:
        """Every known service with healthy/total instance counts."""
        return self._request("GET", f"{API}/discovery/services")

    def endpoints(self, namespace: str, service: str, selector: Selector = None) -> Document:
        """Healthy instances of one service, optionally only those matching labels."""
        path = f"{API}/discovery/namespaces/{_seg(namespace)}/services/{_seg(service)}/endpoints"
        return self._request("GET", path, params={"labelSelector": label_selector(selector)})

    def proxies(self) -> Document:
        """Connected proxies and the latest snapshot version."""
        return self._request("GET", f"{API}/proxies")

    # --- security: tokens, the mesh CA, workload identities -------------------------------------

    def tokens(self) -> Document:
        return self._request("GET", f"{API}/tokens")

    def create_token(self, request: Document) -> Document:
        """{"service", "namespace"} or {"operator", "role"}, with "ttlSeconds"."""
        return self._request("POST", f"{API}/tokens", body=request)

    def revoke_token(self, token_id: str) -> Document:
        return self._request("DELETE", f"{API}/tokens/{_seg(token_id)}")

    def ca(self) -> Document:
        return self._request("GET", f"{API}/ca")

    def rotate_ca(self, step: str) -> Document:
        return self._request("POST", f"{API}/ca/rotation", body={"step": step})

    def identities(self, service: str | None = None, namespace: str = "default") -> Document:
        params = {"service": service, "namespace": namespace if service else None}
        return self._request("GET", f"{API}/identities", params=params)

    # --- observability ------------------------------------------------------------------------

    def metrics(self, what: str, **params: str | None) -> Document:
        """Golden metrics: what is "services", "edges" or "top" (docs/protocol.md)."""
        return self._request("GET", f"{API}/metrics/{_seg(what)}", params=params)

    def prometheus_targets(self) -> Iterable[Document]:
        """Prometheus HTTP service discovery groups (a JSON list, not an object)."""
        with self._transport_errors():
            response = self._http.get(f"{API}/prometheus/targets")
        if response.status_code >= 400:
            raise ApiError.from_body(response.status_code, response.content)
        answer = response.json()
        return answer if isinstance(answer, list) else []

    def tap(self, **params: str | None) -> Iterator[Document]:
        """Yield request summaries from a service's sidecars until the stream ends."""
        query = {k: v for k, v in params.items() if v is not None}
        timeout = httpx.Timeout(self.timeout, read=None)
        with self._transport_errors():
            with self._http.stream("GET", f"{API}/tap", params=query, timeout=timeout) as resp:
                if resp.status_code >= 400:
                    raise ApiError.from_body(resp.status_code, resp.read())
                for line in resp.iter_lines():
                    try:
                        summary = json.loads(line) if line.strip() else None
                    except ValueError:
                        continue
                    if isinstance(summary, dict):
                        yield summary
