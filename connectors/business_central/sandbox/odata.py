"""The slice of OData v4 that Business Central serves: ``$filter``, ``$top`` and server-driven paging.

Only what the workbench (and a careful client) uses: ``and``-joined comparisons ``<field> <op>
<literal>`` with ``eq ne gt ge lt le``; literals are 'strings' (with '' as an escaped quote),
dates, datetimes, GUIDs, numbers, true/false/null. Anything else is a 400, as BC would answer.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any


class BcError(Exception):
    """An answer in BC's error shape; the server turns it into ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def syntax_error(detail: str = "") -> BcError:
    # BC's own wording for a filter it cannot parse (error-codes.csv, ODataNotFoundException).
    return BcError(
        400, "BadRequest_NotFound", "Bad Request - Error in query syntax." + (f" {detail}" if detail else "")
    )


# --- timestamps ---------------------------------------------------------------------------------


def iso_ms(dt: datetime) -> str:
    """BC's lastModifiedDateTime form: UTC, milliseconds, 'Z'. Fixed width, so strings sort as times."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_dt(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Clock:
    """Strictly increasing millisecond timestamps.

    Incremental readers resume with ``lastModifiedDateTime ge <last seen>``: a change must never get
    a stamp at or before one already handed out, even if the seeded data is dated in the future.
    """

    def __init__(self, floor: datetime):
        self.last = floor

    def now(self) -> str:
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if now <= self.last:
            now = self.last + timedelta(milliseconds=1)
        self.last = now
        return iso_ms(now)


# --- $filter ------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*('(?:[^']|'')*'|[^\s']+)")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}

Predicate = Callable[[dict], bool]


def _literal(token: str) -> Any:
    if token.startswith("'"):
        if len(token) < 2 or not token.endswith("'"):
            raise syntax_error(f"Unterminated string literal {token!r}.")
        return token[1:-1].replace("''", "'")
    low = token.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if _DATETIME.match(token):
        try:
            return iso_ms(parse_dt(token))  # normalised: compares as a string with stored stamps
        except ValueError:
            raise syntax_error(f"'{token}' is not a valid DateTimeOffset.") from None
    if _DATE.match(token) or _GUID.match(token):
        return token.lower() if _GUID.match(token) else token
    try:
        return Decimal(token)
    except InvalidOperation:
        raise syntax_error(f"Unexpected token '{token}'.") from None


def _compare(op: Callable[[Any, Any], bool], value: Any, literal: Any) -> bool:
    if literal is None:
        empty = value is None or value == ""
        return empty if op is _OPS["eq"] else (not empty if op is _OPS["ne"] else False)
    if isinstance(literal, bool):
        return isinstance(value, bool) and op(value, literal)
    if isinstance(literal, Decimal):
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return False
        return op(Decimal(str(value)), literal)
    if not isinstance(value, str):
        return False
    if _GUID.match(literal):
        value = value.lower()
    return op(value, literal)


def parse_filter(text: str | None, fields: set[str], entity: str) -> Predicate | None:
    """Compile ``$filter`` into a predicate over stored documents (None when there is no filter)."""
    if not text or not text.strip():
        return None
    tokens = _TOKEN.findall(text)
    if "".join(tokens).replace(" ", "") != text.replace(" ", ""):
        raise syntax_error()
    clauses: list[tuple[str, Callable, Any]] = []
    i = 0
    while True:
        if i + 3 > len(tokens):
            raise syntax_error("Expression expected.")
        field, op, lit = tokens[i], tokens[i + 1].lower(), tokens[i + 2]
        if field not in fields:
            raise BcError(
                400,
                "BadRequest_NotFound",
                f"Could not find a property named '{field}' on type 'Microsoft.NAV.{entity}'.",
            )
        if op not in _OPS:
            raise syntax_error(f"Unknown operator '{tokens[i + 1]}'.")
        clauses.append((field, _OPS[op], _literal(lit)))
        i += 3
        if i == len(tokens):
            break
        if tokens[i].lower() != "and":
            raise syntax_error(f"Only 'and' is supported here, got '{tokens[i]}'.")
        i += 1

    def predicate(doc: dict) -> bool:
        return all(_compare(op, doc.get(field), lit) for field, op, lit in clauses)

    return predicate


# --- paging -------------------------------------------------------------------------------------


def parse_top(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        top = int(value)
    except ValueError:
        raise syntax_error(f"Invalid value '{value}' for $top.") from None
    if top < 0:
        raise syntax_error("$top must be a non-negative integer.")
    return top


def page_of(
    rows: Sequence[dict],
    keys: Sequence[str],
    *,
    predicate: Predicate | None,
    after: str | None,
    size: int,
    top: int | None,
) -> tuple[list[dict], str | None]:
    """One page of ``rows`` (sorted by ``keys``) after the key ``after``: (page, key to resume after).

    Keyset paging (``$skiptoken`` = last key served) stays correct while rows are added or changed
    between pages, which an offset would not.
    """
    limit = size if top is None else min(size, top)
    start = bisect.bisect_right(keys, after) if after else 0
    out: list[dict] = []
    for idx in range(start, len(rows)):
        row = rows[idx]
        if predicate is not None and not predicate(row):
            continue
        if len(out) == limit:
            # Another match exists: only then is there a next page (no empty last page).
            if top is not None and len(out) >= top:
                return out, None
            return out, keys[idx - 1]
        out.append(row)
    return out, None
