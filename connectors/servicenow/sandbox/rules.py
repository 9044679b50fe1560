"""What the sandbox's approval table accepts: writable fields, choice values, the state machine, and
the demo's automatic decisions.

Writes keep text (ServiceNow stores strings): unknown and system fields are dropped, as an instance
drops them; ``approver`` must name a ``sys_user`` (sys_id or user_name), ``state`` one of
``STATES``, ``u_amount`` a decimal number; a bare ``due_date`` gets midnight. A decided record
(approved, rejected, cancelled) cannot change to another state: 403 "Operation Failed", what an
instance answers when a business rule aborts the update. Not modelled: approval sequencing
(``order`` does not move "not requested" records to "requested").
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from connectors.sandboxkit.kit import HttpError

from .query import APPROVALS, SCHEMA, bad_request, error, number

STATES = ("requested", "approved", "rejected", "cancelled", "not requested", "not_required")
FINAL = {"approved", "rejected", "cancelled"}
CONSOLE_DECISIONS = ("approved", "rejected")


def clean(body: dict, user_id: Callable[[str], str]) -> dict[str, str]:
    """Writable fields as strings (ServiceNow stores text); references and choices validated.
    ``user_id(ref)`` turns an approver reference into a sys_user sys_id (or raises a 400)."""
    values: dict[str, str] = {}
    for key, raw in body.items():
        if key not in SCHEMA[APPROVALS] or key.startswith("sys_"):
            continue  # unknown and system fields are ignored, as on an instance
        values[key] = "" if raw is None else str(raw).lower() if isinstance(raw, bool) else str(raw)
    if "approver" in values:
        values["approver"] = user_id(values["approver"])
    if "state" in values and values["state"] not in STATES:
        raise bad_request("Invalid value for state", f"'{values['state']}' is not one of {', '.join(STATES)}")
    if values.get("u_amount") and number(values["u_amount"]) is None:
        raise bad_request("Invalid value for u_amount", f"'{values['u_amount']}' is not a decimal number")
    if values.get("due_date") and len(values["due_date"]) == 10:
        values["due_date"] += " 00:00:00"
    return values


def check_transition(rec: dict, new_state: str) -> None:
    if rec["state"] in FINAL and new_state != rec["state"]:
        # What an instance answers when a business rule aborts the update.
        raise HttpError(
            403, error("Operation Failed", f"The approval is already {rec['state']}; it cannot become {new_state}")
        )


def autodecide_setting(body: dict) -> dict[str, Any]:
    """``{"after_seconds": N|null, "reject_over": "<amount>"|null}``, checked (demo only)."""
    after, limit = body.get("after_seconds"), body.get("reject_over")
    if after is not None and (not isinstance(after, int | float | Decimal) or after < 0):
        raise bad_request("after_seconds must be a number >= 0 or null")
    if limit is not None and number(str(limit)) is None:
        raise bad_request("reject_over must be an amount or null")
    return {
        "after_seconds": None if after is None else float(after),
        "reject_over": None if limit is None else str(limit),
    }


def auto_decision(rec: dict, limit: Decimal | None) -> dict[str, str]:
    """The autodecide verdict on a requested approval: rejected over ``limit``, else approved."""
    amount = number(rec["u_amount"]) if rec["u_amount"] else None
    if limit is not None and amount is not None and amount > limit:
        return {
            "state": "rejected",
            "comments": f"Rejected automatically: {rec['u_amount']} {rec['u_currency']} is over the limit of {limit}.",
        }
    return {"state": "approved", "comments": "Approved automatically by the sandbox."}
