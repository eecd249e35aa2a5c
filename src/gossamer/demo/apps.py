"""The demo's three little services, stdlib only, each started with `gossamer run`.

    python -m gossamer.demo.apps frontend|catalog|reviews

They listen on $PORT. The frontend calls `http://catalog/...` and `http://reviews/...`
through $HTTP_PROXY (its sidecar), which is how an unmodified app joins the mesh.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BOOKS = [
    {"id": 1, "title": "The Little Prince", "author": "Antoine de Saint-Exupéry"},
    {"id": 2, "title": "Invisible Cities", "author": "Italo Calvino"},
    {"id": 3, "title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin"},
]

Answer = tuple[int, Any]


def catalog(path: str) -> Answer:
    if path in ("/", "/items"):
        return 200, {"items": BOOKS}
    if path.startswith("/items/") and path[7:].isdigit():
        for book in BOOKS:
            if book["id"] == int(path[7:]):
                return 200, book
    return 404, {"error": f"no such item: {path}"}


def reviews(path: str) -> Answer:
    version = os.environ.get("DEMO_VERSION", "v1")
    if path.startswith("/reviews/") and path[9:].isdigit():
        book = int(path[9:])
        review: dict[str, Any] = {"book": book, "text": "A quiet, lovely read.", "version": version}
        if version != "v1":
            review["stars"] = 4 + book % 2  # v2 is the one with stars
        return 200, review
    return 404, {"error": f"no such review: {path}"}


def _fetch(url: str) -> Any:
    # urllib honours HTTP_PROXY/NO_PROXY: the sidecar resolves `catalog` and `reviews`.
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def frontend(path: str) -> Answer:
    if path not in ("/", "/books"):
        return 404, {"error": f"no such page: {path}"}
    try:
        items = _fetch("http://catalog/items")["items"]
        shelf = []
        for book in items[:2]:
            review = _fetch(f"http://reviews/reviews/{book['id']}")
            shelf.append({"title": book["title"], "review": review})
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        return 502, {"error": f"upstream failed: {exc}"}
    return 200, {"page": "frontend", "shelf": shelf}


def echo(path: str) -> Answer:
    """Says who answered; `/slow/<ms>` answers after a delay (for drain and timeout tests);
    $DEMO_FAIL_PERCENT of requests answer 500 (a bad release, for canary tests)."""
    if path.startswith("/slow/") and path[6:].isdigit():
        time.sleep(int(path[6:]) / 1000)
    if random.random() * 100 < float(os.environ.get("DEMO_FAIL_PERCENT") or 0):
        return 500, {"instance": os.environ.get("DEMO_INSTANCE", str(os.getpid())), "error": "bad"}
    return 200, {"instance": os.environ.get("DEMO_INSTANCE", str(os.getpid())), "path": path}


APPS: dict[str, Callable[[str], Answer]] = {
    "frontend": frontend,
    "catalog": catalog,
    "reviews": reviews,
    "echo": echo,
}


def make_handler(app: Callable[[str], Answer], name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so the sidecar can pool connections
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle and delayed ACKs
        # add ~40 ms to every keep-alive answer.
        disable_nagle_algorithm = True
        server_version = f"gossamer-demo-{name}"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            status, payload = (200, {"ok": True}) if path == "/healthz" else app(path)
            body = json.dumps(payload).encode() + b"\n"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the sidecar's access log is the one to read

    return Handler


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in APPS:
        print(f"usage: python -m gossamer.demo.apps {'|'.join(APPS)}", file=sys.stderr)
        return 2
    port = int(os.environ.get("PORT", "0"))
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(APPS[argv[0]], argv[0]))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
