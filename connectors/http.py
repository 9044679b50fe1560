"""One HTTP client for every connector: OAuth 2.0 client credentials, timeouts, error mapping.

Maps responses onto the error hierarchy in ``connectors.base`` (Airbyte's default error mapping,
healthchecks' "permanent" flag): 401/403 -> ConfigError, 429/5xx/timeouts -> TransientError (with
Retry-After), other 4xx -> Rejected with the vendor's code and message, bad JSON -> MalformedPayload.
Retrying is the caller's business (sync owns backoff); this client makes one attempt per call,
except that it refreshes an expired token once.

Two rules every connector gets from here rather than writing its own:

- **Exact numbers** (``json_exact``): every vendor body is parsed with JSON fractions as ``Decimal``
  (never ``float``), integers as ``int``; a body that is not JSON is ``MalformedPayload``.
- **Credentials stay on the connection's origin** (``same_origin``): a paging link a vendor page
  names (OData's ``@odata.nextLink``, Concur's ``links`` ``next`` href, any future ``Link`` header)
  is resolved against the connection's base URL and refused, with ``MalformedPayload`` naming the
  foreign origin, when its scheme, host or port differ; ``HttpClient`` applies the same rule to
  absolute URLs it is given and to redirects, so a token or API key is never sent to another origin.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from .base import ConfigError, MalformedPayload, Rejected, TransientError

CONNECT_TIMEOUT = 3.05  # seconds: a little over a TCP retransmission window
DEFAULT_TIMEOUT = (CONNECT_TIMEOUT, 30)  # connect, read (seconds)
DEFAULT_PORTS = {"http": 80, "https": 443}


def timeouts(seconds: float) -> tuple[float, float]:
    """(connect, read) for requests from the connection's ``timeout`` setting."""
    return min(CONNECT_TIMEOUT, seconds), seconds


# --- exact JSON -----------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_exact(content: bytes | str, *, where: str = "response") -> Any:
    """A vendor's JSON body with every fraction as an exact ``Decimal`` (``0.1`` stays ``0.1``,
    ``1234567.8912345678901`` keeps all its digits); integers stay ``int``, which Python holds
    exactly. ``NaN``/``Infinity`` and anything that is not JSON raise ``MalformedPayload``."""
    try:
        return json.loads(content, parse_float=Decimal, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the constants above
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        raise MalformedPayload(f"{where}: not JSON ({exc}): {text[:200]!r}") from None


# --- origins --------------------------------------------------------------------------------


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased and with the default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None  # a port that is not a number: no origin matches it
    return f"{scheme}://{(parts.hostname or '').lower()}:{port if port is not None else '?'}"


def same_origin(base_url: str, link: Any, *, what: str = "link") -> str:
    """``link`` resolved against ``base_url`` (RFC 3986: absolute, ``/rooted`` or relative), if it
    stays on the base URL's origin (scheme, host and port). A link to any other origin raises
    ``MalformedPayload`` naming it: the connection's credentials are for its own server only, so
    a vendor page (or a proxy, or an attacker in the data) cannot send them elsewhere."""
    if not isinstance(link, str) or not link.strip():
        raise MalformedPayload(f"{what} is not a URL: {link!r}")
    resolved = urljoin(base_url.rstrip("/") + "/", link.strip())
    foreign, own = origin_of(resolved), origin_of(base_url)
    if foreign != own:
        raise MalformedPayload(
            f"{what} points to another origin, {foreign} (not this connection's {own}): "
            f"refused, so that no credentials go there: {link[:200]!r}"
        )
    return resolved


class _OriginBoundSession(requests.Session):
    """A session that follows redirects only within one origin. requests drops ``Authorization``
    on a cross-host redirect but keeps every other header (Coupa's ``X-COUPA-API-KEY``), and
    would still make the request: here the redirect is refused before anything is sent."""

    def rebuild_auth(self, prepared_request, response):
        same_origin(response.url, prepared_request.url, what=f"a redirect from {response.url}")
        super().rebuild_auth(prepared_request, response)


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
        self.session = _OriginBoundSession()
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
                f"token endpoint HTTP {resp.status_code}",
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            )
        try:
            body = json_exact(resp.content, where=f"token response of {self.token_url}")
            token = body["access_token"]
            expires_in = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError, MalformedPayload) as exc:
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
        """A path below the base URL, or an absolute URL on the base URL's own origin (else
        ``MalformedPayload``: see ``same_origin``)."""
        parts = urlsplit(path)
        if parts.scheme or parts.netloc:
            return same_origin(self.base_url, path, what="URL")
        return f"{self.base_url}/{path.lstrip('/')}"

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
                raise TransientError(
                    f"{method} {path}: timed out waiting for the answer", uncertain=sends_body
                ) from exc
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
        """The body, parsed exactly (``json_exact``); None for an empty answer."""
        if resp.status_code == 204 or not resp.content:
            return None
        return json_exact(resp.content, where=f"{resp.request.method} {resp.url}")

    def _error_of(self, resp: requests.Response) -> tuple[str, str]:
        try:
            return self.error_parser(json_exact(resp.content))
        except Exception:  # noqa: BLE001 - any unparseable error body is still an error
            return "", (resp.text or resp.reason or "")[:500]


def _default_error_parser(body: Any) -> tuple[str, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return str(err.get("code", "")), str(err.get("message", ""))
    return "", json.dumps(body, default=str)[:500]
