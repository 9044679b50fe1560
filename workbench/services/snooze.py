"""Snooze: an item waits for a date, or for a business event the syncs observe, then wakes by itself.

A snoozed item is `waiting` with `snoozed_until` and/or `wait_for` + `wait_key` set (the key says what
exactly: `period:NW-US:2026-12`, `supplier:NW-US:V0001`, `receipt:PO-1001`, `connection:3`,
`employee:NW-US:E0042`, `cost_center:NW-US:CC100`...). The service that applies a change calls
`exception_items_wake` with the keys it just saw (one query per page), so every path that brings the
change (scheduled pull, webhook, reconciliation's accept) wakes the items: waiting -> open with a
"woke" event, then the document is re-validated, and the item resolves if its cause is gone.
Leaving `waiting` by any other way (resolved meanwhile, a fix) clears the snooze (exception_item_transition).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from workbench import jobs
from workbench.errors import InvalidTransition, StaleUpdate
from workbench.models import (
    ApprovalDelegation,
    ApprovalTask,
    Connection,
    Employee,
    ExceptionEvent,
    ExceptionItem,
    GLAccount,
    OutboundWrite,
)
from workbench.models.exceptions import Status, WaitFor
from workbench.services.exception_items import exception_item_transition

MAX_SNOOZE = timedelta(days=366)  # past a year it is not a snooze but a forgotten item
KEY_MAX = 200
REASON_MAX = 2000
# What a key of each event names (prefix) and how it reads; master-data values name their kind first.
KEY_PREFIXES = {
    WaitFor.PERIOD_OPEN: ("period",),
    WaitFor.SUPPLIER_UNBLOCKED: ("supplier",),
    WaitFor.RECEIPT_ARRIVED: ("receipt",),
    WaitFor.CONNECTION_UP: ("connection",),
    WaitFor.APPROVER_BACK: ("employee",),
    WaitFor.MASTER_DATA_VALUE: ("cost_center", "gl_account", "tax_code", "project", "supplier", "employee", "entity"),
}
VALUE_NOUNS = {
    "cost_center": "cost center",
    "gl_account": "GL account",
    "tax_code": "tax code",
    "project": "project",
    "supplier": "supplier",
    "employee": "employee",
    "entity": "legal entity",
}
_KEY = re.compile(r"^[a-z_]+:[^\s:][^\x00-\x1f]*$")


@dataclass(frozen=True)
class Wait:
    wait_for: str
    wait_key: str

    @property
    def label(self) -> str:
        return wait_label(self.wait_for, self.wait_key)


def _parts(key: str) -> tuple[str, list[str]]:
    kind, _, rest = key.partition(":")
    return kind, rest.split(":")


def _named(rest: list[str]) -> str:
    """'NW-US', 'CC100' -> 'CC100 of NW-US' (entity first in keys, last in words)."""
    return f"{rest[-1]} of {':'.join(rest[:-1])}" if len(rest) > 1 else rest[0]


def wait_label(wait_for: str, wait_key: str) -> str:
    """What a snoozed item waits for, in a person's words: "period 2026-12 of NW-US to open"."""
    kind, rest = _parts(wait_key)
    what = _named(rest) if wait_key else ""
    if wait_for == WaitFor.PERIOD_OPEN:
        return f"period {what} to open" if what else "the period to open"
    if wait_for == WaitFor.SUPPLIER_UNBLOCKED:
        return f"supplier {what} to be unblocked" if what else "the supplier to be unblocked"
    if wait_for == WaitFor.RECEIPT_ARRIVED:
        return f"the goods receipt for {what}" if what else "the goods receipt"
    if wait_for == WaitFor.CONNECTION_UP:
        name = _connection_name(rest[0]) if wait_key else ""
        return f"connection {name} to recover" if name else "the connection to recover"
    if wait_for == WaitFor.APPROVER_BACK:
        return f"approver {what} to be back" if what else "the approver to be back"
    if wait_for == WaitFor.MASTER_DATA_VALUE:
        return (
            f"{VALUE_NOUNS.get(kind, kind)} {what} to appear in the ERP" if what else "the value to appear in the ERP"
        )
    return WaitFor(wait_for).label if wait_for in WaitFor.values else ""


def _connection_name(pk: str) -> str:
    if not pk.isdecimal() or len(pk) > 12:
        return ""
    return Connection.objects.filter(pk=int(pk)).values_list("name", flat=True).first() or ""


def describe(item: ExceptionItem) -> str:
    """The item's snooze, e.g. "Waiting for period 2026-12 of NW-US to open (or until 2026-12-09 00:00 UTC)"."""
    parts = []
    if item.wait_for:
        parts.append(f"Waiting for {wait_label(item.wait_for, item.wait_key)}")
    if item.snoozed_until:
        when = f"{timezone.localtime(item.snoozed_until):%Y-%m-%d %H:%M %Z}"
        parts.append(f"or until {when}" if parts else f"Snoozed until {when}")
    return " ".join(parts)


# --- what an item would wait for -----------------------------------------------------------------


def suggested_wait(item: ExceptionItem) -> Wait | None:
    """The event that would clear this item, inferred from its code and detail; None if none would."""
    doc = item.document
    entity = (item.entity.code if item.entity_id else "") or (doc.entity_code if doc else "")
    detail = item.detail or {}
    code = item.code
    if code == "CLOSED_PERIOD" or (code == "ERP_REJECTED" and _about_period(item)):
        period = detail.get("period") or _line_month(item)
        return Wait(WaitFor.PERIOD_OPEN, f"period:{entity}:{period}") if period and entity else None
    if code == "BLOCKED_SUPPLIER" and detail.get("supplier") and entity:
        return Wait(WaitFor.SUPPLIER_UNBLOCKED, f"supplier:{entity}:{detail['supplier']}")
    if code == "UNKNOWN_SUPPLIER" and detail.get("supplier") and entity:
        return Wait(WaitFor.MASTER_DATA_VALUE, f"supplier:{entity}:{detail['supplier']}")
    if code in ("NOT_RECEIVED", "QUANTITY_VARIANCE"):
        po = detail.get("po_number") or (doc.po_number if doc else "")
        return Wait(WaitFor.RECEIPT_ARRIVED, f"receipt:{po}") if po else None
    if code in ("CONNECTOR_UNAVAILABLE", "POSTING_FAILED"):
        conn = item.connection_id or _write_connection(detail.get("write_id"))
        return Wait(WaitFor.CONNECTION_UP, f"connection:{conn}") if conn else None
    if code in ("NO_APPROVER", "APPROVAL_OVERDUE") and doc is not None and entity:
        approver = _approver_of(doc) or (item.root_cause_key.rsplit(":", 1)[-1] if code == "NO_APPROVER" else "")
        if approver and approver != entity:
            return Wait(WaitFor.APPROVER_BACK, f"employee:{entity}:{approver}")
        return None
    if code == "INACTIVE_EMPLOYEE" and doc is not None and doc.party_code and entity:
        return Wait(WaitFor.MASTER_DATA_VALUE, f"employee:{entity}:{doc.party_code}")
    kind = {"UNKNOWN_COST_CENTER": "cost_center", "INVALID_TAX_CODE": "tax_code", "BLOCKED_GL_ACCOUNT": "gl_account"}
    if code in kind and detail.get("value") and entity:
        return Wait(WaitFor.MASTER_DATA_VALUE, f"{kind[code]}:{entity}:{detail['value']}")
    if code == "UNKNOWN_ENTITY" and doc is not None and doc.entity_code:
        return Wait(WaitFor.MASTER_DATA_VALUE, f"entity:{doc.entity_code}")
    return None


def _about_period(item: ExceptionItem) -> bool:
    words = f"{item.message} {(item.detail or {}).get('erp_message', '')}".lower()
    return "period" in words or "posting date" in words


def _line_month(item: ExceptionItem) -> str:
    line = item.line if item.line_id else None
    if line is None and item.document_id:
        line = item.document.lines.exclude(date=None).order_by("line_no").first()
    return f"{line.date:%Y-%m}" if line is not None and line.date else ""


def _write_connection(write_id) -> int | None:
    if not str(write_id or "").isdecimal():
        return None
    return OutboundWrite.objects.filter(pk=int(write_id)).values_list("connection_id", flat=True).first()


def _approver_of(doc) -> str:
    task = doc.approval_tasks.filter(state=ApprovalTask.State.REQUESTED).order_by("sequence").first()
    return task.approver_code if task else ""


# --- snooze ----------------------------------------------------------------------------------------


def _clean_key(wait_for: str, wait_key: str, item: ExceptionItem) -> str:
    if wait_for not in WaitFor.values:
        raise InvalidTransition(f"Unknown event {wait_for[:40]!r}: choose one of {', '.join(WaitFor.values)}.")
    if not wait_key:
        wait = suggested_wait(item)
        if wait is None or wait.wait_for != wait_for:
            raise InvalidTransition(
                f"Say what exactly it waits for (wait_key, e.g. {KEY_PREFIXES[wait_for][0]}:…): "
                "nothing on this item names it."
            )
        return wait.wait_key
    if "\x00" in wait_key or len(wait_key) > KEY_MAX or not _KEY.match(wait_key):
        raise InvalidTransition(
            f"wait_key must read like {KEY_PREFIXES[wait_for][0]}:<what> (at most {KEY_MAX} printable characters)."
        )
    if _parts(wait_key)[0] not in KEY_PREFIXES[wait_for]:
        raise InvalidTransition(
            f"A wait for {wait_for} names " + " or ".join(f"{p}:…" for p in KEY_PREFIXES[wait_for]) + "."
        )
    return wait_key


@transaction.atomic
def exception_item_snooze(
    *, item: ExceptionItem, actor, until: datetime | None = None, wait_for: str = "", wait_key: str = "", reason=""
) -> ExceptionItem:
    """Put the item aside until `until`, or until `wait_for` happens to `wait_key` (whichever comes first).

    The key defaults to the one the item's code suggests. The item moves to `waiting` (event "snoozed",
    saying what it waits for); an item already snoozed is snoozed again with the new terms."""
    reason = str(reason or "").strip()
    if "\x00" in reason or len(reason) > REASON_MAX:
        raise InvalidTransition(f"The reason must be printable text of at most {REASON_MAX} characters.")
    wait_key = str(wait_key or "").strip()
    if not until and not wait_for:
        raise InvalidTransition("Snooze until a date, or until an event.")
    if until is not None:
        if timezone.is_naive(until):
            until = timezone.make_aware(until)
        now = timezone.now()
        if until <= now:
            raise InvalidTransition("The snooze date must be in the future.")
        if until > now + MAX_SNOOZE:
            raise InvalidTransition("Snooze for a year at most.")
    wait_key = _clean_key(wait_for, wait_key, item) if wait_for else ""
    if not (item.status in (Status.OPEN, Status.IN_PROGRESS) or item.snoozed):
        raise InvalidTransition(
            f"Only open items can be snoozed; this one is {item.get_status_display().lower()}"
            + (" (it already waits for a fix or a retry)." if item.status == Status.WAITING else ".")
        )
    text = describe(ExceptionItem(status=Status.WAITING, snoozed_until=until, wait_for=wait_for, wait_key=wait_key))
    text += f": {reason}" if reason else "."
    fields = {"snoozed_until": until, "wait_for": wait_for, "wait_key": wait_key}
    if item.snoozed:  # new terms for the same wait
        if ExceptionItem.objects.filter(pk=item.pk, status=Status.WAITING).update(**fields) != 1:
            raise StaleUpdate("This item was changed by someone else. Reload to see its current state.")
        ExceptionEvent.objects.create(
            item=item,
            action="snoozed",
            from_status=item.status,
            to_status=item.status,
            actor=actor,
            reason=text,
            correlation_id=item.correlation_id,
        )
    else:
        exception_item_transition(item=item, to=Status.WAITING, actor=actor, reason=text, action="snoozed")
        ExceptionItem.objects.filter(pk=item.pk).update(**fields)
    for k, v in fields.items():
        setattr(item, k, v)
    return item


# --- wake ------------------------------------------------------------------------------------------


def _wake(items: Iterable[ExceptionItem], *, reason_of, actor=None) -> int:
    woken, docs = 0, set()
    for item in items:
        reason = reason_of(item)
        try:
            exception_item_transition(item=item, to=Status.OPEN, actor=actor, reason=reason, action="woke")
        except StaleUpdate:  # resolved or woken meanwhile: nothing to wake
            continue
        woken += 1
        if item.document_id:
            docs.add(item.document_id)
    for doc_id in sorted(docs):
        # Re-check now: if the event removed the cause, the item resolves instead of waiting for a person.
        jobs.enqueue_on_commit(jobs.REVALIDATE_DOCUMENT, document_id=doc_id)
    return woken


@transaction.atomic
def exception_items_wake(*, event: str, key: str | Iterable[str], cause: str) -> int:
    """Wake the items snoozed until `event` happens to `key` (one key or many: one query either way).

    Called by the service that applies the change, inside its transaction. Returns how many woke."""
    keys = [key] if isinstance(key, str) else list(dict.fromkeys(key))
    if not keys:
        return 0
    items = ExceptionItem.objects.filter(status=Status.WAITING, wait_for=event, wait_key__in=keys).order_by("id")
    return _wake(items, reason_of=lambda i: f"Woke: {_happened(i.wait_for, i.wait_key)} — {cause}")


def _happened(wait_for: str, wait_key: str) -> str:
    label = wait_label(wait_for, wait_key)
    for suffix, done in ((" to open", " is open"), (" to be unblocked", " is unblocked"), (" to recover", " answers")):
        if label.endswith(suffix):
            return label[: -len(suffix)] + done
    if label.endswith(" to be back"):
        return label[: -len(" to be back")] + " is back"
    if label.endswith(" to appear in the ERP"):
        return label[: -len(" to appear in the ERP")] + " is in the ERP"
    return label + " arrived" if wait_for == WaitFor.RECEIPT_ARRIVED else label


@transaction.atomic
def exception_item_wake(*, item: ExceptionItem, actor) -> ExceptionItem:
    """A person ends the snooze now ("Wake now")."""
    if not item.snoozed:
        raise InvalidTransition("This item is not snoozed.")
    who = actor.get_username() if actor else "someone"
    _wake([item], actor=actor, reason_of=lambda i: f"Woke: woken by {who} ({describe(i).lower()})")
    return item


@transaction.atomic
def exception_items_wake_due(*, now: datetime | None = None) -> int:
    """Every minute (beat): wake the items whose snooze date has come, and those waiting for an
    approver who is active again and no longer away on a delegation."""
    now = now or timezone.now()
    due = ExceptionItem.objects.filter(status=Status.WAITING, snoozed_until__lte=now).order_by("id")
    n = _wake(
        due, reason_of=lambda i: f"Woke: the snooze date came ({timezone.localtime(i.snoozed_until):%Y-%m-%d %H:%M %Z})"
    )
    return n + _approvers_back(now)


def _approvers_back(now: datetime) -> int:
    """A delegation that ends is no sync's change: it is checked here, against today's delegations."""
    keys = set(
        ExceptionItem.objects.filter(status=Status.WAITING, wait_for=WaitFor.APPROVER_BACK).values_list(
            "wait_key", flat=True
        )
    )
    if not keys:
        return 0
    back = employees_back(keys, today=timezone.localdate(now))
    return exception_items_wake(event=WaitFor.APPROVER_BACK, key=back, cause="active and not away on a delegation")


def employees_back(keys: Iterable[str], *, today) -> list[str]:
    """Of these `employee:<entity>:<code>` keys, those whose employee is active and not away today."""
    wanted = {}
    for key in keys:
        kind, rest = _parts(key)
        if kind == "employee" and len(rest) == 2:
            wanted[(rest[0], rest[1])] = key
    if not wanted:
        return []
    away = set(
        ApprovalDelegation.objects.filter(
            approver__in={c for _, c in wanted}, start__lte=today, end__gte=today
        ).values_list("approver", flat=True)
    )
    active = Employee.objects.filter(code__in={c for _, c in wanted}, status=Employee.Status.ACTIVE).values_list(
        "entity__code", "code"
    )
    return [wanted[(e, c)] for e, c in active if (e, c) in wanted and c not in away]


# --- what a master-data page brings ----------------------------------------------------------------

WAKE_STREAMS = {"accounting_periods", "suppliers", "employees", "cost_centers", "gl_accounts", "tax_codes", "projects"}
_VALUE_KIND = {
    "cost_centers": "cost_center",
    "gl_accounts": "gl_account",
    "tax_codes": "tax_code",
    "projects": "project",
}


def anything_waits_for_an_event() -> bool:
    """Cheap (partial index): most pages of a pull find nobody waiting, and skip reading them back."""
    return ExceptionItem.objects.filter(status=Status.WAITING).exclude(wait_for="").exists()


def master_data_wake(*, stream: str, rows: dict[tuple[str, str], object], source: str = "the ERP") -> int:
    """Wake what a stored page of master data makes possible. `rows` are the records as stored (after
    field ownership had its say), keyed by (entity code, code)."""
    if stream not in WAKE_STREAMS or not rows:
        return 0
    cause = f"{stream.replace('_', ' ')} synced from {source}"
    if stream == "accounting_periods":
        keys = [f"period:{e}:{c}" for (e, c), p in rows.items() if not p.closed]
        return exception_items_wake(event=WaitFor.PERIOD_OPEN, key=keys, cause=cause)
    if stream == "suppliers":
        keys = [f"supplier:{e}:{c}" for (e, c), s in rows.items() if not s.blocked and s.active]
        return exception_items_wake(event=WaitFor.SUPPLIER_UNBLOCKED, key=keys, cause=cause) + exception_items_wake(
            event=WaitFor.MASTER_DATA_VALUE, key=keys, cause=cause
        )
    if stream == "employees":
        active = [f"employee:{e}:{c}" for (e, c), x in rows.items() if x.status == Employee.Status.ACTIVE]
        back = employees_back(active, today=timezone.localdate())
        return exception_items_wake(event=WaitFor.APPROVER_BACK, key=back, cause=cause) + exception_items_wake(
            event=WaitFor.MASTER_DATA_VALUE, key=active, cause=cause
        )
    kind = _VALUE_KIND[stream]
    usable = rows.items()
    if stream == "gl_accounts":  # an account appears for posting only once the ERP accepts postings to it
        usable = [
            (k, a) for k, a in usable if not a.blocked and a.account_type == GLAccount.POSTING and a.direct_posting
        ]
    elif stream == "cost_centers":
        usable = [(k, c) for k, c in usable if c.active]
    keys = [f"{kind}:{e}:{c}" for (e, c), _ in usable]
    return exception_items_wake(event=WaitFor.MASTER_DATA_VALUE, key=keys, cause=cause)


def legal_entities_wake(codes: Iterable[str]) -> int:
    return exception_items_wake(
        event=WaitFor.MASTER_DATA_VALUE, key=[f"entity:{c}" for c in codes], cause="legal entities synced from the ERP"
    )


def receipts_wake(po_numbers: Iterable[str], *, source: str) -> int:
    return exception_items_wake(
        event=WaitFor.RECEIPT_ARRIVED, key=[f"receipt:{n}" for n in po_numbers if n], cause=f"received from {source}"
    )


def connection_wake(connection: Connection) -> int:
    return exception_items_wake(
        event=WaitFor.CONNECTION_UP, key=f"connection:{connection.pk}", cause=f"{connection.name} recovered"
    )
