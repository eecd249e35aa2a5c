"""ControlClient against a real HTTP server on port 0 that records requests and replays answers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gossamer.client import ApiError, ControlClient, ControlUnreachable
from gossamer.client.errors import ApiError as ApiErrorType


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, Any]] = []
        # path prefix -> (status, content type, body bytes)
        self.answers: dict[str, tuple[int, str, bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(
        self, path: str, status: int, body: Any, content_type: str = "application/json"
    ) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers[path] = (status, content_type, raw)


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, body))
        path = self.path.split("?")[0]
        status, ctype, raw = self.server.answers.get(path, (200, "application/json", b"{}"))
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Recorder]:
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_paths_queries_and_bodies_follow_the_protocol(server: Recorder) -> None:
    with ControlClient(server.url + "/", timeout=5) as client:
        client.list("httproutes", selector={"version": "v2", "team": "a"})
        client.list("services", namespace="shop", selector="app=x")
        client.get("services", "default", "reviews")
        client.create("services", "default", {"kind": "Service"})
        client.replace("services", "default", "reviews", {"kind": "Service"})
        client.delete("services", "default", "a/b")
        client.apply([{"kind": "Service"}], dry_run=True)
        client.apply([], wait_seconds=1.5)
        client.delete_many([("Service", "default", "a")])
        client.endpoints("default", "reviews", {"version": "v2"})
        client.services()
        client.proxies()
        client.version()
    assert server.requests == [
        ("GET", "/api/v1/httproutes?labelSelector=version%3Dv2%2Cteam%3Da", None),
        ("GET", "/api/v1/namespaces/shop/services?labelSelector=app%3Dx", None),
        ("GET", "/api/v1/namespaces/default/services/reviews", None),
        ("POST", "/api/v1/namespaces/default/services", {"kind": "Service"}),
        ("PUT", "/api/v1/namespaces/default/services/reviews", {"kind": "Service"}),
        ("DELETE", "/api/v1/namespaces/default/services/a%2Fb", None),
        ("POST", "/api/v1/apply", {"documents": [{"kind": "Service"}], "dryRun": True}),
        ("POST", "/api/v1/apply", {"documents": [], "dryRun": False, "waitSeconds": 1.5}),
        (
            "POST",
            "/api/v1/delete",
            {"documents": [{"kind": "Service", "metadata": {"name": "a", "namespace": "default"}}]},
        ),
        (
            "GET",
            "/api/v1/discovery/namespaces/default/services/reviews/endpoints?labelSelector=version%3Dv2",
            None,
        ),
        ("GET", "/api/v1/discovery/services", None),
        ("GET", "/api/v1/proxies", None),
        ("GET", "/api/v1/version", None),
    ]


def test_error_body_becomes_api_error_with_every_listed_error(server: Recorder) -> None:
    body = {
        "status": 422,
        "reason": "Invalid",
        "message": "2 errors",
        "field": "spec.x",
        "errors": [{"document": "d", "field": "spec.x", "message": "m", "value": -1}, "junk"],
    }
    server.answer("/api/v1/apply", 422, body)
    with ControlClient(server.url) as client, pytest.raises(ApiError) as info:
        client.apply([{}])
    err = info.value
    assert (err.status, err.reason, err.message, err.field) == (
        422,
        "Invalid",
        "2 errors",
        "spec.x",
    )
    assert err.errors == [{"document": "d", "field": "spec.x", "message": "m", "value": -1}]


def test_error_that_is_not_the_protocols_shape_is_still_an_api_error(server: Recorder) -> None:
    server.answer("/api/v1/version", 502, b"<html>Bad Gateway</html>", "text/html")
    server.answer("/api/v1/proxies", 200, b"not json", "text/plain")
    server.answer("/api/v1/discovery/services", 200, [1, 2])
    with ControlClient(server.url) as client:
        with pytest.raises(ApiError) as info:
            client.version()
        assert (info.value.status, info.value.reason) == (502, "Internal")
        assert info.value.message == "<html>Bad Gateway</html>"
        for call in (client.proxies, client.services):
            with pytest.raises(ApiError) as info:
                call()
            assert info.value.reason == "InvalidResponse"


@pytest.mark.parametrize("body", [b"", b"\xff\xfe", b"null", b'{"reason": 5, "errors": {}}'])
def test_from_body_never_fails(body: bytes) -> None:
    err = ApiErrorType.from_body(404, body)
    assert err.status == 404 and err.reason == "NotFound" and err.errors == []


def test_refused_connection_names_url_and_what_to_do() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with (
            ControlClient(f"http://127.0.0.1:{port}") as client,
            pytest.raises(ControlUnreachable) as info,
        ):
            client.version()
    message = str(info.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "gossamer control" in message and "--control" in message


def test_silent_server_times_out_as_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # accepts into the backlog, never answers
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with ControlClient(url, timeout=0.2) as client, pytest.raises(ControlUnreachable) as info:
            client.services()
    assert "no answer within 0.2s" in str(info.value)


def test_watch_yields_events_and_reports_gone(server: Recorder) -> None:
    events = [
        {"type": "PUT", "revision": 3, "object": {"kind": "Service"}},
        {"type": "DELETE", "revision": 4, "object": {}},
    ]
    stream = b"".join(json.dumps(e).encode() + b"\n\n" for e in events)
    server.answer("/api/v1/watch", 200, stream, "application/x-ndjson")
    with ControlClient(server.url) as client:
        assert list(client.watch(from_revision=2, kinds=["Service", "HTTPRoute"])) == events
        assert server.requests[-1][1] == "/api/v1/watch?fromRevision=2&kinds=Service%2CHTTPRoute"
        server.answer(
            "/api/v1/watch", 410, {"status": 410, "reason": "Gone", "message": "compacted"}
        )
        with pytest.raises(ApiError) as info:
            list(client.watch(from_revision=1))
    assert (info.value.status, info.value.reason) == (410, "Gone")
