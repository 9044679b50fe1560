"""Pure functions between ServiceNow Table API records and the canonical shapes of ``connectors/README.md``.

The Table API sends every value as a string (numbers and booleans too), date-times as
``YYYY-MM-DD HH:MM:SS`` in UTC, and reference fields as ``{"link", "value"}`` (or as the bare
sys_id with ``sysparm_exclude_reference_link``). The connector asks for dot-walked fields
(``approver.employee_number``, ``manager.employee_number``) so that a record maps on its own.

State values are ServiceNow's choice values; canonical states are lower case with underscores
(``not requested`` -> ``not_requested``). ServiceNow has no "decided at" field: ``decided_at`` is
the ``sys_updated_on`` of an approved or rejected record (a later edit of the comments moves it).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import RecordError

RAW_LIMIT = 4096
SN_STATES = ("requested", "approved", "rejected", "cancelled", "not requested", "not_required")
DECIDED = ("approved", "rejected")
SOURCE_TABLE = "x_coupa_requisition"  # what the approvals are about: Coupa requisitions


class MappingError(ValueError):
    """A record that does not have the shape or values the canonical record needs."""


def ref_value(value: Any) -> str:
    """A reference field's sys_id, whether it came as ``{"link", "value"}`` or as a bare string."""
    if isinstance(value, dict):
        value = value.get("value")
    return "" if value is None else str(value)


def sn_datetime(value: Any, field: str) -> str:
    """``2026-11-20 10:15:00`` (UTC) -> ``2026-11-20T10:15:00Z``."""
    try:
        parsed = datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise MappingError(f"{field} is not a date-time: {value!r}") from None
    return parsed.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sn_date(value: Any, field: str) -> str | None:
    """A date or date-time field as ``YYYY-MM-DD``; empty -> None."""
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise MappingError(f"{field} is not a date: {value!r}") from None


def sn_bool(value: Any, field: str) -> bool:
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise MappingError(f"{field} is not a boolean: {value!r}")


def required(row: dict, key: str) -> str:
    value = ref_value(row.get(key))
    if not value:
        raise MappingError(f"{key} is missing")
    return value


def text(value: Any) -> str:
    return "" if value is None else str(value)


def approval(row: Any) -> dict[str, Any]:
    """One ``sysapproval_approver`` record -> canonical ``approval_decision``."""
    if not isinstance(row, dict):
        raise MappingError(f"record is not an object: {type(row).__name__}")
    sys_id = required(row, "sys_id")
    state = text(row.get("state"))
    if state not in SN_STATES:
        raise MappingError(f"state is not a ServiceNow approval state: {state!r}")
    approver = text(row.get("approver.employee_number"))
    if not approver:
        # Approvals by non-employees (admin, integration users) cannot be tied to a person here.
        raise MappingError(f"approver {ref_value(row.get('approver')) or '(empty)'} has no employee_number")
    updated_at = sn_datetime(row.get("sys_updated_on"), "sys_updated_on")
    return {
        "external_id": sys_id,
        "correlation_key": text(row.get("u_correlation_id")),
        "document_number": text(row.get("u_document_number")),
        "approver": approver,
        "state": state.replace(" ", "_"),
        "comments": text(row.get("comments")),
        "due_date": sn_date(row.get("due_date"), "due_date"),
        "decided_at": updated_at if state in DECIDED else None,
        "updated_at": updated_at,
    }


def user(row: Any) -> dict[str, Any]:
    """One ``sys_user`` record -> canonical ``approver``."""
    if not isinstance(row, dict):
        raise MappingError(f"record is not an object: {type(row).__name__}")
    return {
        "external_id": required(row, "sys_id"),
        "user_name": required(row, "user_name"),
        "employee_number": text(row.get("employee_number")),  # "" for admin and integration accounts
        "name": text(row.get("name")),
        "email": text(row.get("email")),
        "active": sn_bool(row.get("active"), "active"),
        "manager": text(row.get("manager.employee_number")),
    }


def map_record(mapper, row: Any, table: str) -> tuple[dict[str, Any] | None, RecordError | None]:
    """(record, None) or (None, RecordError): one bad record never stops the page."""
    try:
        return mapper(row), None
    except MappingError as exc:
        sys_id = ref_value(row.get("sys_id")) if isinstance(row, dict) else ""
        summary = {}
        if isinstance(row, dict):
            summary = {
                k: text(row.get(f))
                for k, f in (
                    ("number", "u_document_number"),
                    ("amount", "u_amount"),
                    ("currency", "u_currency"),
                    ("name", "name"),
                )
                if row.get(f)
            }
        return None, RecordError(
            external_id=sys_id or None,
            message=f"{table} {sys_id or '(no sys_id)'}: {exc}",
            raw=json.dumps(row, default=str, ensure_ascii=False)[:RAW_LIMIT],
            summary=summary,
        )


# --- writing ------------------------------------------------------------------------------------


def due_datetime(value: Any) -> str:
    """``2026-11-25`` (end of that day) or an ISO date-time -> ServiceNow's UTC ``YYYY-MM-DD HH:MM:SS``."""
    if value in (None, ""):
        return ""
    raw = value.isoformat() if isinstance(value, date) else str(value)
    try:
        if len(raw) == 10:
            return f"{date.fromisoformat(raw)} 23:59:59"
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"create_approval due_date is not a date or date-time: {value!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def approval_body(payload: dict[str, Any], approver_sys_id: str) -> dict[str, str]:
    """A canonical ``create_approval`` payload -> a ``sysapproval_approver`` insert (all strings)."""
    try:
        amount = Decimal(str(payload.get("amount")))
    except InvalidOperation:
        raise ValueError(f"create_approval amount is not a number: {payload.get('amount')!r}") from None
    due = due_datetime(payload.get("due_date"))
    return {
        "approver": approver_sys_id,
        "state": "requested",
        "u_correlation_id": str(payload["correlation_key"]),
        "u_document_number": text(payload.get("document_number")),
        "u_amount": str(amount),
        "u_currency": text(payload.get("currency")),
        "short_description": text(payload.get("description")),
        "due_date": due,
        "order": str(int(payload.get("sequence") or 1)),
        "source_table": SOURCE_TABLE,
        "document_id": text(payload.get("document_id")),
    }
