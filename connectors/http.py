"""One HTTP client for every connector: OAuth 2.0 client credentials, timeouts, error mapping.

Maps responses onto the error hierarchy in ``connectors.base`` (Airbyte's default error mapping,
healthchecks' "permanent" flag): 401/403 -> ConfigError, 429/5xx/timeouts -> TransientError (with
Retry-After), other 4xx -> Rejected with the vendor's code and message, bad JSON -> MalformedPayload.
Retrying is the caller's business (sync owns backoff); this client makes one attempt per call,
except that it refreshes an expired token once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from .base import ConfigError, MalformedPayload, Rejected, TransientError

DEFAULT_TIMEOUT = (3.05, 30)  # connect, read (seconds)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: treat as unknown, backoff decides


class HttpClient:
    """A requests.Session with bearer tokens from an OAuth 2.0 client-credentials endpoint.

    ``error_parser(response_json) -> (code, message)`` extracts the vendor's error shape.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str = "",
        error_parser: Callable[[Any], tuple[str, str]] | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    ):
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.timeout = timeout
        self.error_parser = error_parser or _default_error_parser
        self.session = requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = threading.Lock()

    # --- auth ---------------------------------------------------------------------------
    def _fetch_token(self) -> str:
        data = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}
        if self.scope:
            data["scope"] = self.scope
        try:
            resp = self.session.post(self.token_url, data=data, timeout=self.timeout)
        except requests.Timeout as exc:
            raise TransientError(f"token endpoint timed out: {exc}") from exc
        except requests.ConnectionError as exc:
            raise TransientError(f"token endpoint unreachable: {exc}") from exc
        if resp.status_code in (400, 401, 403):
            raise ConfigError(f"credentials rejected by {self.token_url} (HTTP {resp.status_code})")
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TransientError(
                f"token endpoint HTTP {resp.status_code}", retry_after=parse_retry_after(resp.headers.get("Retry-After"))
            )
        try:
            body = resp.json()
            token = body["access_token"]
            expires_in = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedPayload(f"token response is not a token: {resp.text[:200]!r}") from exc
        self._token = token
        self._token_expires = time.monotonic() + max(30.0, expires_in - 60)
        return token

    def token(self, *, refresh: bool = False) -> str:
        with self._lock:
            if refresh or not self._token or time.monotonic() >= self._token_expires:
                return self._fetch_token()
            return self._token

    # --- requests -----------------------------------------------------------------------
    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, params=None, json_body=None, headers=None) -> requests.Response:
        """One attempt; returns a 2xx response or raises a typed connector error."""
        sends_body = method.upper() in ("POST", "PATCH", "PUT", "DELETE")
        for attempt in (1, 2):
            hdrs = {"Accept": "application/json", "Authorization": f"Bearer {self.token(refresh=attempt == 2)}"}
            if headers:
                hdrs.update(headers)
            try:
                resp = self.session.request(
                    method, self.url(path), params=params, json=json_body, headers=hdrs, timeout=self.timeout
                )
            except requests.ConnectTimeout as exc:
                raise TransientError(f"{method} {path}: connect timeout") from exc
            except requests.Timeout as exc:
                # The request may have been processed: a write must be looked up before a resend.
                raise TransientError(f"{method} {path}: timed out waiting for the answer", uncertain=sends_body) from exc
            except requests.ConnectionError as exc:
                raise TransientError(f"{method} {path}: connection failed ({exc.__class__.__name__})") from exc
            if resp.status_code == 401 and attempt == 1:
                continue  # token expired or revoked: fetch a new one once
            break
        status = resp.status_code
        if 200 <= status < 300:
            return resp
        code, message = self._error_of(resp)
        if status in (401, 403):
            raise ConfigError(f"HTTP {status} {code}: {message}")
        if status == 429:
            raise TransientError(
                f"HTTP 429 {code}: {message}", retry_after=parse_retry_after(resp.headers.get("Retry-After"))
            )
        if status >= 500:
            raise TransientError(
                f"HTTP {status} {code}: {message}",
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                uncertain=sends_body,
            )
        raise Rejected(code or f"HTTP_{status}", message)

    def get_json(self, path: str, *, params=None, headers=None) -> Any:
        return self.json_of(self.request("GET", path, params=params, headers=headers))

    def json_of(self, resp: requests.Response) -> Any:
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise MalformedPayload(f"{resp.request.method} {resp.url}: response is not JSON: {resp.text[:200]!r}") from exc

    def _error_of(self, resp: requests.Response) -> tuple[str, str]:
        try:
            return self.error_parser(resp.json())
        except Exception:  # noqa: BLE001 - any unparseable error body is still an error
            return "", (resp.text or resp.reason or "")[:500]


def _default_error_parser(body: Any) -> tuple[str, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return str(err.get("code", "")), str(err.get("message", ""))
    return "", json.dumps(body)[:500]
