"""A tiny HTTP server for connector tests: answers what it is told and records every request.

Two uses: the "other origin" a hostile paging link or redirect points at (it must receive
nothing), and vendor bodies no sandbox sends (JSON numbers with more digits than a float holds).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Seen:
    method: str
    path: str  # with the query
    headers: dict[str, str]


class FakeServer:
    """``answer(method, path, body)``: ``body`` is JSON text (sent as is) or an object to encode.
    Unknown routes answer 404. ``seen`` lists every request that reached the server."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[int, bytes, dict[str, str]]] = {}
        self.seen: list[Seen] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                fake.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
                status, data, headers = fake.routes.get(
                    (self.command, urlsplit(self.path).path), (404, b'{"error": "not found"}', {})
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, method: str, path: str, body: Any, *, status: int = 200, headers: dict | None = None) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.routes[(method, path)] = (status, data, dict(headers or {}))

    def token_endpoint(self, path: str) -> None:
        self.answer("POST", path, {"access_token": "fake-token", "token_type": "Bearer", "expires_in": 3600})

    def close(self) -> None:
        threading.Thread(target=lambda: (self.server.shutdown(), self.server.server_close()), daemon=True).start()
