"""A tiny HTTP server kit that every sandbox is built on (stdlib only).

What every sandbox gets from here:
- routing by method + regex, JSON bodies, HTTP/1.1 keep-alive (ThreadingHTTPServer);
- OAuth 2.0 client-credentials tokens (``POST <token_path>``) and bearer checks on API routes;
- fault injection on API routes, set at start or at run time through ``/sandbox/faults``:
  a share of 500s, of 429s with Retry-After, of hangs past the client's timeout, of malformed
  bodies, slow responses, or ``down`` (503 to everything);
- ``/sandbox/health``, ``/sandbox/stats`` and a state store persisted in a SQLite file, so that
  a restarted sandbox remembers what was posted to it.
"""

from __future__ import annotations

import gc
import json
import random
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Faults:
    error_rate: float = 0.0  # share of API requests answered 500
    throttle_rate: float = 0.0  # share answered 429 with Retry-After
    retry_after: float = 1.0  # seconds, sent in Retry-After
    delay_ms: int = 0  # added to every API request
    timeout_rate: float = 0.0  # share that hang for ``hang_seconds`` (after doing the work, for writes)
    hang_seconds: float = 40.0
    malformed_rate: float = 0.0  # share of GET answers with a broken JSON body
    down: bool = False  # 503 to every API request
    timeout_methods: list = None  # e.g. ["POST"]: only these methods hang (default: all)

    def update(self, data: dict) -> None:
        for key, value in data.items():
            if key == "timeout_methods":
                self.timeout_methods = [str(m).upper() for m in value] if value else None
            elif key in self.__dataclass_fields__:
                current = getattr(self, key)
                setattr(self, key, type(current)(value) if not isinstance(current, bool) else bool(value))


class JsonEncoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, Decimal):
            # Vendors send JSON numbers; keep the exact digits.
            return float(o) if o == o.to_integral_value() else float(str(o))
        return super().default(o)


def dumps(data: Any) -> bytes:
    return json.dumps(data, cls=JsonEncoder, ensure_ascii=False).encode()


class Store:
    """Collections of JSON documents kept in memory and written through to SQLite.

    Reads come from memory (fast listing for big seeds); every put is committed to disk.
    """

    def __init__(self, path: str | None):
        self.lock = threading.RLock()
        self.data: dict[str, dict[str, dict]] = {}
        self.db = sqlite3.connect(path or ":memory:", check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS docs (coll TEXT, id TEXT, body TEXT, PRIMARY KEY (coll, id))")
        gc.disable()  # loading ~100k small dicts: collection passes would dominate the restart
        try:
            for coll, key, body in self.db.execute("SELECT coll, id, body FROM docs"):
                self.data.setdefault(coll, {})[key] = json.loads(body)
        finally:
            gc.enable()

    def is_empty(self) -> bool:
        return not self.data

    def put(self, coll: str, key: str, doc: dict, *, commit: bool = True) -> dict:
        with self.lock:
            self.data.setdefault(coll, {})[key] = doc
            self.db.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", (coll, key, dumps(doc).decode()))
            if commit:
                self.db.commit()
        return doc

    def put_many(self, coll: str, docs: dict[str, dict]) -> None:
        with self.lock:
            self.data.setdefault(coll, {}).update(docs)
            self.db.executemany(
                "INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", [(coll, k, dumps(v).decode()) for k, v in docs.items()]
            )
            self.db.commit()

    def get(self, coll: str, key: str) -> dict | None:
        return self.data.get(coll, {}).get(key)

    def all(self, coll: str) -> list[dict]:
        with self.lock:
            return list(self.data.get(coll, {}).values())

    def clear(self) -> None:
        with self.lock:
            self.data.clear()
            self.db.execute("DELETE FROM docs")
            self.db.commit()


class HttpError(Exception):
    def __init__(self, status: int, body: Any, headers: dict | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    match: re.Match | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null", parse_float=Decimal)
        except ValueError as exc:
            raise HttpError(400, {"error": {"code": "BadRequest", "message": f"Invalid Request Body: {exc}"}}) from exc

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


Handler = Callable[[Request], Any]  # returns (status, body) or body


class Sandbox:
    """Subclass, set ``name``, ``token_path`` and register routes in ``setup()``."""

    name = "sandbox"
    token_path = "/oauth2/token"
    client_id = "workbench"
    client_secret = "sandbox-secret"

    def __init__(self, *, data_path: str | None = None, seed: int = 42, faults: dict | None = None, **options):
        self.store = Store(data_path)
        self.seed = seed
        self.options = options
        self.faults = Faults()
        self.faults.update(faults or {})
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.tokens: dict[str, float] = {}
        self.stats: dict[str, int] = {}
        self.routes: list[tuple[str, re.Pattern, Handler, bool]] = []
        self.route("GET", r"/sandbox/health", lambda r: {"ok": True, "name": self.name}, auth=False)
        self.route("GET", r"/sandbox/faults", lambda r: asdict(self.faults), auth=False)
        self.route("POST", r"/sandbox/faults", self._set_faults, auth=False)
        self.route("GET", r"/sandbox/stats", lambda r: self.stats_payload(), auth=False)
        self.route("POST", self.token_path, self._token, auth=False)
        self.setup()
        if self.store.is_empty():
            self.seed_store()

    # --- to override ----------------------------------------------------------------------
    def setup(self) -> None: ...

    def seed_store(self) -> None: ...

    def stats_payload(self) -> dict:
        return dict(self.stats)

    def error_body(self, status: int, code: str, message: str) -> Any:
        return {"error": {"code": code, "message": message}}

    # --- helpers --------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler, *, auth: bool = True) -> None:
        self.routes.append((method, re.compile(pattern + r"/?$"), handler, auth))

    def count(self, key: str, n: int = 1) -> None:
        with self.rng_lock:
            self.stats[key] = self.stats.get(key, 0) + n

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.rng_lock:
            return self.rng.random() < rate

    def _set_faults(self, req: Request):
        self.faults.update(req.json() or {})
        return asdict(self.faults)

    def _token(self, req: Request):
        form = req.form()
        if not form and req.body:
            try:
                form = json.loads(req.body)
            except ValueError:
                form = {}
        if form.get("grant_type") != "client_credentials":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "grant_type must be client_credentials",
            }
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + 3600
        return {"token_type": "Bearer", "expires_in": 3599, "access_token": token}

    def check_auth(self, req: Request) -> None:
        header = req.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if not token or self.tokens.get(token, 0) < time.time():
            raise HttpError(
                401,
                self.error_body(
                    401, "Authentication_InvalidCredentials", "The server has rejected the client credentials."
                ),
            )

    # --- dispatch -------------------------------------------------------------------------
    def dispatch(self, req: Request) -> tuple[int, Any, dict, bool]:
        """Returns (status, body, headers, hang_after)."""
        allowed = False
        for method, pattern, handler, auth in self.routes:
            m = pattern.match(req.path)
            if not m:
                continue
            allowed = True
            if method != req.method:
                continue
            req.match = m
            hang = False
            if auth:
                f = self.faults
                if f.down:
                    return 503, self.error_body(503, "Internal_ServiceUnavailable", "Service unavailable."), {}, False
                if f.delay_ms:
                    time.sleep(f.delay_ms / 1000)
                if self.chance(f.throttle_rate):
                    self.count("faults.429")
                    return (
                        429,
                        self.error_body(429, "Application_TooManyRequests", "Too many requests. Retry later."),
                        {
                            "Retry-After": str(
                                int(f.retry_after) if f.retry_after == int(f.retry_after) else f.retry_after
                            )
                        },
                        False,
                    )
                if self.chance(f.error_rate):
                    self.count("faults.500")
                    return 500, self.error_body(500, "Internal_ServerError", "An unexpected error occurred."), {}, False
                self.check_auth(req)
                hang = (not f.timeout_methods or req.method in f.timeout_methods) and self.chance(f.timeout_rate)
            result = handler(req)
            status, body, headers = 200, result, {}
            if isinstance(result, tuple):
                status, body = result[0], result[1]
                headers = result[2] if len(result) > 2 else {}
            if auth and req.method == "GET" and status == 200 and self.chance(self.faults.malformed_rate):
                self.count("faults.malformed")
                return 200, b'{"value": [{"id": "broken", ', {}, False
            return status, body, headers, hang
        if allowed:
            return (
                405,
                self.error_body(405, "BadRequest_MethodNotAllowed", f"'{req.method}' is not allowed here."),
                {},
                False,
            )
        return (
            404,
            self.error_body(404, "BadRequest_NotFound", f"Resource not found for the segment '{req.path}'."),
            {},
            False,
        )

    def make_handler(self):
        sandbox = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
            server_version = f"{sandbox.name}-sandbox"

            def log_message(self, fmt, *args):  # quiet: the workbench logs its own calls
                pass

            def _serve(self, method: str):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    method, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}, self.headers, body
                )
                try:
                    status, payload, headers, hang = sandbox.dispatch(req)
                except HttpError as exc:
                    status, payload, headers, hang = exc.status, exc.body, exc.headers, False
                except Exception as exc:  # noqa: BLE001 - a sandbox bug must still answer
                    status, payload, headers, hang = (
                        500,
                        sandbox.error_body(500, "Internal_ServerError", repr(exc)),
                        {},
                        False,
                    )
                if hang:
                    # The work is done but the answer never arrives in time: an "uncertain" outcome.
                    sandbox.count("faults.timeout")
                    time.sleep(sandbox.faults.hang_seconds)
                if status == 204 or payload is None:
                    data, ctype = b"", "application/json"
                elif isinstance(payload, bytes):
                    data, ctype = payload, "application/json"
                elif isinstance(payload, str):
                    data, ctype = payload.encode(), "text/html; charset=utf-8"
                else:
                    data, ctype = dumps(payload), "application/json; charset=utf-8"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", headers.pop("Content-Type", ctype))
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PATCH(self):
                self._serve("PATCH")

            def do_DELETE(self):
                self._serve("DELETE")

        return _Handler

    def make_server(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer((host, port), self.make_handler())
        server.daemon_threads = True
        return server


def run_in_thread(sandbox: Sandbox, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start a sandbox on a free port in a background thread (for tests); returns (server, base_url)."""
    server = sandbox.make_server(port=port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def serve(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve until interrupted (the `manage.py sandbox` command)."""
    server = sandbox.make_server(host, port)
    print(f"{sandbox.name} sandbox listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
