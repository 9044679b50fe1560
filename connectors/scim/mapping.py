"""Pure functions between SCIM 2.0 User resources (RFC 7643) and the canonical ``employee``.

The employee data lives in two places of a User: the core schema (``userName``, ``name``,
``displayName``, ``emails``, ``active``, ``externalId``) and the enterprise extension, an object
keyed by its schema URN (``employeeNumber``, ``costCenter``, ``organization``, ``manager``).
The manager is only a reference (``{"value": "<SCIM id>"}``); the connector resolves ids to
employee numbers and passes them in, so a record maps on its own.

``active`` is a JSON boolean in RFC 7643. Microsoft Entra sends booleans as the strings
``"True"``/``"False"`` in PATCH bodies, and some providers echo that back, so both are read.
A User without ``active`` is an error, not "active": a finance control must not guess that a
person is still employed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.base import RecordError

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
RAW_LIMIT = 4096


class MappingError(ValueError):
    """A User that does not have the shape or values the canonical record needs."""


def parse_time(value: Any) -> datetime | None:
    """An xsd:dateTime (``2026-11-20T10:15:00Z``, fractions and offsets allowed) -> aware UTC, or None."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None  # a time without a zone is ambiguous


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def enterprise(user: Mapping) -> Mapping:
    ext = user.get(ENTERPRISE)
    return ext if isinstance(ext, Mapping) else {}


def code_of(user: Mapping) -> str:
    """The employee number: the enterprise ``employeeNumber``, else ``externalId`` (what HR-driven provisioning sets)."""
    return text(enterprise(user).get("employeeNumber")) or text(user.get("externalId"))


def manager_id(user: Any) -> str:
    manager = enterprise(user).get("manager") if isinstance(user, Mapping) else None
    if isinstance(manager, Mapping):
        manager = manager.get("value")
    return text(manager)


def seen_key(user: Any) -> str:
    """What identifies one version of a User: a change within the same second gets a new ``meta.version``."""
    if not isinstance(user, Mapping):
        return ""
    meta = user.get("meta") if isinstance(user.get("meta"), Mapping) else {}
    return f"{text(user.get('id'))}:{text(meta.get('version'))}"


def last_modified(user: Any) -> datetime | None:
    meta = user.get("meta") if isinstance(user, Mapping) else None
    return parse_time(meta.get("lastModified")) if isinstance(meta, Mapping) else None


def boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise MappingError(f"{field} is not a boolean: {value!r}")


def text(value: Any) -> str:
    return "" if value is None else str(value)


def email_of(user: Mapping) -> str:
    emails = [e for e in user.get("emails") or [] if isinstance(e, Mapping) and e.get("value")]
    for pick in (lambda e: e.get("primary") in (True, "True", "true"), lambda e: e.get("type") == "work", bool):
        found = next((e for e in emails if pick(e)), None)
        if found:
            return text(found["value"])
    user_name = text(user.get("userName"))
    return user_name if "@" in user_name else ""


def name_of(user: Mapping) -> str:
    name = user.get("name") if isinstance(user.get("name"), Mapping) else {}
    joined = " ".join(text(name.get(k)) for k in ("givenName", "familyName") if name.get(k))
    return text(user.get("displayName")) or text(name.get("formatted")) or joined or text(user.get("userName"))


def employee(user: Any, manager_numbers: Mapping[str, str]) -> dict[str, Any]:
    """One SCIM User -> canonical ``employee``. ``manager_numbers``: SCIM id -> employee number."""
    if not isinstance(user, Mapping):
        raise MappingError(f"resource is not an object: {type(user).__name__}")
    user_id = text(user.get("id"))
    if not user_id:
        raise MappingError("id is missing")
    code = code_of(user)
    if not code:
        # Service and guest accounts have neither: they are not employees the ledger knows.
        raise MappingError(f"user {user.get('userName')!r} has no employeeNumber or externalId")
    if "active" not in user:
        raise MappingError("active is missing")
    updated = last_modified(user)
    if updated is None:
        raise MappingError(f"meta.lastModified is not a date-time: {(user.get('meta') or {}).get('lastModified')!r}")
    ext, boss = enterprise(user), manager_id(user)
    return {
        "external_id": user_id,
        "code": code,
        "entity": text(ext.get("organization")),
        "name": name_of(user),
        "email": email_of(user),
        "status": "active" if boolean(user["active"], "active") else "inactive",
        "cost_center": text(ext.get("costCenter")),
        "manager": manager_numbers.get(boss, "") if boss else "",
        "updated_at": format_time(updated.replace(microsecond=0)),
    }


def map_record(user: Any, manager_numbers: Mapping[str, str]) -> tuple[dict[str, Any] | None, RecordError | None]:
    """(record, None) or (None, RecordError): one bad User never stops the page."""
    try:
        return employee(user, manager_numbers), None
    except MappingError as exc:
        ok = isinstance(user, Mapping)
        user_id = text(user.get("id")) if ok else ""
        summary = {
            k: v for k, v in (("number", code_of(user) if ok else ""), ("name", name_of(user) if ok else "")) if v
        }
        return None, RecordError(
            external_id=user_id or None,
            message=f"User {user_id or '(no id)'}: {exc}",
            raw=json.dumps(user, default=str, ensure_ascii=False)[:RAW_LIMIT],
            summary=summary,
        )
