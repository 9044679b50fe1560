"""The connector contract (Airbyte/Singer shape, kept small).

A connector is built from a config dict (base_url, credentials, options) and offers:

- ``check()``       credentials and reachability, as a result (bad credentials is not a crash);
- ``discover()``    the streams it offers;
- ``read(stream, cursor)``  incremental pages of *canonical* records plus the cursor to resume from;
- ``write(op, idempotency_key=...)``  an idempotent write: the same key gives the same result.

Records are plain dicts in the canonical shapes documented in ``connectors/README.md``; money is
``Decimal`` (parsed with ``Decimal(str(x))``), dates are ISO strings ``YYYY-MM-DD``.
Errors are raised by type (see the hierarchy below) so that sync can decide what to do.
Every connector reads its config dict through ``ConfigReader``, so a bad value is always a
``ConfigError`` naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


@dataclass(frozen=True)
class StreamSpec:
    name: str  # "expense_reports", "cost_centers", ...
    canonical: str  # the canonical object it yields: "expense_report", "cost_center", ...
    primary_key: str = "external_id"
    cursor_field: str | None = None  # None: the stream is a queue (read, then acknowledge)


@dataclass
class RecordError:
    """A record that could not be turned into a canonical record (quarantined, not lost)."""

    external_id: str | None
    message: str
    raw: str = ""  # the offending payload, truncated to a few KB
    # Whatever could still be read, for the person handling it: number, name, party, amount, currency.
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Page:
    records: list[dict[str, Any]]
    next_cursor: dict[str, Any] | None  # where to resume after this page is committed
    errors: list[RecordError] = field(default_factory=list)


@dataclass(frozen=True)
class WriteOp:
    action: str  # "post_expense_report", "acknowledge", "posting_confirmation", ...
    payload: dict[str, Any]


@dataclass
class WriteResult:
    external_id: str  # the id the target system gave the document (or the doc id confirmed)
    status: str  # "posted", "acknowledged", "confirmed", ...
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # e.g. {"number": "108001", "fiscal_year": "2026"}


class Connector(Protocol):
    kind: str

    def check(self) -> CheckResult: ...

    def discover(self) -> list[StreamSpec]: ...

    def read(self, stream: str, cursor: dict[str, Any] | None) -> Iterator[Page]: ...

    def write(self, op: WriteOp, *, idempotency_key: str) -> WriteResult: ...


# --- errors ---------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base of everything a connector raises on purpose."""


class ConfigError(ConnectorError):
    """401/403 or bad settings: retrying will not help; the integration team must act."""


class TransientError(ConnectorError):
    """429, 5xx, timeouts, connection refused: retry later with backoff.

    ``uncertain`` is True when the request may have reached the vendor (timeout or 5xx after the
    body was sent): a write must then be looked up before it is sent again.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, uncertain: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.uncertain = uncertain


class Rejected(ConnectorError):
    """The vendor refused the document (closed period, blocked dimension, ...): a business problem."""

    def __init__(self, code: str, message: str, *, field: str = "", value: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        # When the vendor names the culprit (e.g. field="cost_center", value="LEGACY"), sync can act on it.
        self.field = field
        self.value = value


class MalformedPayload(ConnectorError):
    """A response that does not have the documented shape."""


# --- config ---------------------------------------------------------------------------------


class ConfigReader:
    """One connector's config dict, read the same way by every connector: a missing or bad value
    is a ``ConfigError`` that names the connector and the key. ``None`` and ``""`` count as absent.

    ``text`` (a string; required unless given a default), ``positive_int`` (page sizes: a whole
    number >= 1, capped at the vendor's maximum), ``timeout`` (seconds > 0), ``url`` (http or
    https with a host; the trailing slash removed), ``has`` (which optional credentials are set).
    """

    def __init__(self, kind: str, config: Any):
        if not isinstance(config, dict):
            raise ConfigError(f"{kind} config must be an object of settings, not {type(config).__name__}")
        self.kind = kind
        self.config = config

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.kind} config {key!r} {problem}")

    def _value(self, key: str) -> Any:
        value = self.config.get(key)
        return None if value is None or value == "" else value

    def has(self, *keys: str) -> bool:
        return all(self._value(k) is not None for k in keys)

    def text(self, key: str, default: str | None = None) -> str:
        value = self._value(key)
        if value is None:
            if default is None:
                raise self.error(key, "is missing")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error(key, f"must be text, not {type(value).__name__}")
        return str(value)

    def positive_int(self, key: str, default: int, *, maximum: int | None = None) -> int:
        value = self._value(key)
        if value is None:
            return default
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and value.strip().lstrip("+").isdecimal():
            number = int(value)
        if number is None or number < 1:
            raise self.error(key, f"must be a whole number of at least 1, not {value!r}")
        return min(number, maximum) if maximum else number

    def timeout(self, key: str = "timeout", default: float = 30.0) -> float:
        value = self._value(key)
        if value is None:
            return default
        try:
            seconds = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise self.error(key, f"must be a number of seconds above 0, not {value!r}")
        return seconds

    def url(self, key: str = "base_url", default: str | None = None) -> str:
        value = self.text(key, default)
        parts = urlsplit(value.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise self.error(key, f"must be an http(s) URL with a host (and no query), not {value!r}")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise self.error(key, f"has a bad port: {value!r}") from None
        return value.strip().rstrip("/")
