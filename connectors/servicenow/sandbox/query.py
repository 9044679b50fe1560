"""The Table API's language: its two tables, date-times, error envelope and encoded queries.

Tables hold text only (every value a string, as the Table API returns them); ``NUMERIC`` fields are
compared and sorted as numbers, and ``REFERENCES`` says which fields point at which table, for
dot-walking (``approver.employee_number``). Encoded queries are terms joined by ``^`` (a literal
caret is ``^^``) with ``=``, ``!=``, ``>=``, ``>``, ``<=``, ``<``, ``IN``, ``NOT IN``, ``STARTSWITH``,
``LIKE``, ``ISEMPTY``, ``ISNOTEMPTY`` and ``ORDERBY``/``ORDERBYDESC``. Anything else (``^OR``,
``^NQ``, an unknown field or operator) is a 400 here, where a real instance ignores the term.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from connectors.sandboxkit.kit import HttpError

APPROVALS, USERS = "sysapproval_approver", "sys_user"
SYS_FIELDS = ["sys_id", "sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by", "sys_mod_count"]
SCHEMA = {
    APPROVALS: [
        "approver",
        "state",
        "comments",
        "due_date",
        "order",
        "source_table",
        "document_id",
        "sysapproval",
        "u_correlation_id",
        "u_document_number",
        "u_amount",
        "u_currency",
        "short_description",
        *SYS_FIELDS,
    ],
    USERS: [
        "user_name",
        "employee_number",
        "first_name",
        "last_name",
        "name",
        "email",
        "title",
        "active",
        "manager",
        *SYS_FIELDS,
    ],
}
NUMERIC = {"u_amount", "order", "sys_mod_count"}  # compared and sorted as numbers, as their field types are
REFERENCES = {(APPROVALS, "approver"): USERS, (USERS, "manager"): USERS}
FMT = "%Y-%m-%d %H:%M:%S"  # ServiceNow date-times: UTC, no "T", no zone
TERM = re.compile(
    r"(?P<field>[a-z_][a-z0-9_.]*)(?P<op>NOT IN|ISNOTEMPTY|ISEMPTY|STARTSWITH|LIKE|IN|!=|>=|<=|=|>|<)"
    r"(?P<value>.*)",
    re.S,
)
CARET = re.compile(r"(?<!\^)\^(?!\^)")  # a lone ^ joins terms; ^^ is a literal caret


def sn_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime(FMT)


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, FMT).replace(tzinfo=UTC)


def number(value: str) -> Decimal | None:
    try:
        return Decimal(value)
    except (InvalidOperation, ValueError):
        return None


def parse_query(query: str, table: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, bool]]]:
    """An encoded query -> (filters [(field, op, value)], order [(field, descending)])."""
    filters, order = [], []
    for raw in CARET.split(query or ""):
        term = raw.replace("^^", "^")
        if not term or term == "EQ":
            continue
        if term.startswith("ORDERBYDESC"):
            order.append((term[11:], True))
        elif term.startswith("ORDERBY"):
            order.append((term[7:], False))
        elif term.startswith(("OR", "NQ")):
            raise bad_request("Invalid query: OR and NQ are not supported by this sandbox", term)
        elif m := TERM.fullmatch(term):
            filters.append((m["field"], m["op"], m["value"]))
        else:
            raise bad_request("Invalid query", f"Cannot parse the term '{term}'")
    for field, *_ in [*filters, *order]:
        check_field(table, field)
    return filters, order


def check_field(table: str, path: str) -> None:
    """Every part of a dot-walked path must be a field, and all but the last a reference."""
    for i, part in enumerate(path.split(".")):
        if part not in SCHEMA[table]:
            raise bad_request("Invalid query", f"Unknown field '{path}' on table {table}")
        if i < path.count("."):
            table = REFERENCES.get((table, part)) or ""
            if not table:
                raise bad_request("Invalid query", f"'{part}' is not a reference field")


def matches(value: str, op: str, arg: str, numeric: bool = False) -> bool:
    if op == "=":
        return value == arg
    if op == "!=":
        return value != arg
    if op in ("IN", "NOT IN"):
        return (value in arg.split(",")) == (op == "IN")
    if op == "ISEMPTY":
        return value == ""
    if op == "ISNOTEMPTY":
        return value != ""
    if op == "STARTSWITH":
        return value.startswith(arg)
    if op == "LIKE":
        return arg.lower() in value.lower()
    # Ranges: numeric fields as numbers, everything else as text, which is right for
    # "YYYY-MM-DD HH:MM:SS". An empty value never satisfies a range (as on an instance).
    if value == "":
        return False
    a, b = (number(value), number(arg)) if numeric else (None, None)
    left, right = (a, b) if a is not None and b is not None else (value, arg)
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]


def bad_request(message: str, detail: str | None = None) -> HttpError:
    return HttpError(400, error(message, detail))


def error(message: str, detail: str | None = None) -> dict:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}
