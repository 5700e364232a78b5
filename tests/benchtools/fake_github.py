"""A local fake of the few GitHub REST calls the comment workflow makes, on 127.0.0.1.

``GET /repos/O/R/pulls/N``, ``GET/POST /repos/O/R/issues/N/comments`` (paged) and
``PATCH /repos/O/R/issues/comments/ID``, with a bearer token checked on every call. The
token's owner is :attr:`FakeGitHub.bot`: comments it creates carry that login.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeGitHub:
    """The state behind the fake: PR heads, comments per PR, every request seen."""

    repo: str
    token: str
    bot: str = "github-actions[bot]"
    heads: dict[int, str] = field(default_factory=dict)
    comments: dict[int, list[dict[str, object]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    _next_id: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_comment(self, number: int, login: str, body: str) -> int:
        with self.lock:
            self._next_id += 1
            self.comments.setdefault(number, []).append(
                {"id": self._next_id, "user": {"login": login}, "body": body}
            )
            return self._next_id

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if m in ("POST", "PATCH", "DELETE")]


def _handler(state: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    prefix = f"/repos/{state.repo}"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, object]:
            n = int(self.headers.get("Content-Length", "0"))
            data = json.loads(self.rfile.read(n) or b"{}")
            assert isinstance(data, dict)
            return data

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            state.requests.append((method, url.path))
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                return self._send(401, {"message": "Bad credentials"})
            if not url.path.startswith(prefix + "/"):
                return self._send(404, {"message": "Not Found"})
            path = url.path[len(prefix) :]
            if m := re.fullmatch(r"/pulls/(\d+)", path):
                head = state.heads.get(int(m[1]))
                if method != "GET" or head is None:
                    return self._send(404, {"message": "Not Found"})
                return self._send(200, {"number": int(m[1]), "head": {"sha": head}})
            if m := re.fullmatch(r"/issues/(\d+)/comments", path):
                number = int(m[1])
                if method == "GET":
                    q = parse_qs(url.query)
                    per, page = int(q["per_page"][0]), int(q["page"][0])
                    items = state.comments.get(number, [])
                    return self._send(200, items[(page - 1) * per : page * per])
                if method == "POST":
                    cid = state.add_comment(number, state.bot, str(self._body()["body"]))
                    return self._send(201, state.comments[number][-1] | {"id": cid})
            if (m := re.fullmatch(r"/issues/comments/(\d+)", path)) and method == "PATCH":
                body = str(self._body()["body"])
                for items in state.comments.values():
                    for item in items:
                        if item["id"] == int(m[1]):
                            item["body"] = body
                            return self._send(200, item)
            return self._send(404, {"message": "Not Found"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler


@contextmanager
def serve(state: FakeGitHub) -> Iterator[FakeGitHub]:
    """Serve ``state`` on 127.0.0.1 (an ephemeral port) while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
