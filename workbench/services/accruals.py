"""Period-end accruals: a finance manager books the period's received-not-invoiced cost in the ERP.

`accrual_post` turns what the accruals screen shows for one entity (PO lines received and not yet
invoiced, at the PO's price) into one journal per entity and period, with its lines by cost center
and GL account, dated the period's last day, and queues it through the outbox. Its reversal (same
lines, opposite sign, its own document number, dated the first day of the next period) is queued
when the ERP has booked the accrual: a reversal must never reach the books without its accrual.

Idempotent twice over: the outbox key is entity + period + kind (+ the attempt, bumped only after
the ERP refused), and the connector looks the journal's document number up in the ERP's G/L
entries before posting, so a repeated request or a worker that died between the ERP's answer and
recording it never books twice.

The outcomes (`accrual_journal_posted / _refused / _failed`) are called by services/postings.py,
which owns every write's outcome.
"""

from __future__ import annotations

import hashlib
import re
from calendar import monthrange
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from workbench import jobs
from workbench.errors import WorkbenchError
from workbench.models import AccrualJournal, AccrualJournalEvent, ExceptionItem, LegalEntity, OutboundWrite, write_key
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.money import quantize
from workbench.selectors import accruals as accrual_picture
from workbench.selectors.connections import erp_connection
from workbench.services.exception_items import exception_item_raise, exception_items_resolve

POST_JOURNAL = "post_accrual_journal"
ACCRUALS_JOURNAL = "ACCRUALS"  # the ERP's general journal batch for accruals
PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MAX_DOCUMENT_NO = 20  # BC's Document No. is Code[20]
Kind = AccrualJournal.Kind
Status = AccrualJournal.Status


class NothingToAccrue(WorkbenchError):
    pass


# --- what to book -----------------------------------------------------------------------------------------


def period_dates(period: str) -> tuple[date, date]:
    """(last day of the period, first day of the next): the accrual's and the reversal's posting dates."""
    m = PERIOD.match(period or "")
    if not m:
        raise WorkbenchError(f"Period must be a month as YYYY-MM, not {period[:20]!r}.")
    year, month = int(m.group(1)), int(m.group(2))
    last = date(year, month, monthrange(year, month)[1])
    return last, last + timedelta(days=1)


def document_number(entity: LegalEntity, period: str, kind: str) -> str:
    """ACR-NW-US-202611 / REV-NW-US-202611: readable, deterministic, within BC's 20 characters."""
    prefix = "ACR" if kind == Kind.ACCRUAL else "REV"
    month = period.replace("-", "")
    number = f"{prefix}-{entity.code}-{month}"
    if len(number) > MAX_DOCUMENT_NO:  # a long entity code: a short digest of it instead
        number = f"{prefix}-{hashlib.sha1(entity.code.encode()).hexdigest()[:8].upper()}-{month}"
    return number


def accrual_lines(entity: LegalEntity, period: str) -> tuple[list[dict], list[dict], Decimal]:
    """(lines by cost center and GL account in the entity's currency, what is left out and why, total).

    The same numbers as the screen: received-not-invoiced PO lines at the PO's price. Lines in
    another currency are left out (no rate to convert them with), as are lines without a GL account.
    """
    rows = accrual_picture(entity_code=entity.code, entity_ids={entity.pk})["received_not_invoiced"]
    groups: dict[tuple[str, str], dict] = {}
    left: dict[tuple[str, str], dict] = {}
    for r in rows:
        line = r["line"]
        currency = line.currency or r["po"].currency
        if currency != entity.currency or not line.gl_account:
            reason = "currency" if currency != entity.currency else "no_account"
            out = left.setdefault(
                (reason, currency), {"reason": reason, "currency": currency, "amount": "0", "lines": 0}
            )
            out["amount"] = str(Decimal(out["amount"]) + r["amount"])
            out["lines"] += 1
            continue
        key = (line.cost_center or "", line.gl_account)
        group = groups.setdefault(key, {"cost_center": key[0], "account": key[1], "amount": Decimal(0), "lines": 0})
        group["amount"] += r["amount"]
        group["lines"] += 1
    lines = []
    for (cost_center, account), g in sorted(groups.items()):
        amount = quantize(g["amount"], entity.currency)
        if amount == 0:
            continue
        lines.append(
            {
                "cost_center": cost_center,
                "account": account,
                "amount": str(amount),
                "description": f"Accrued, received not invoiced {period} ({g['lines']} PO lines)"[:100],
            }
        )
    total = sum((Decimal(ln["amount"]) for ln in lines), Decimal(0))
    return lines, sorted(left.values(), key=lambda x: (x["reason"], x["currency"])), total


def journal_payload(journal: AccrualJournal) -> dict:
    return {
        "entity": journal.entity.code,
        "journal": ACCRUALS_JOURNAL,
        "document_number": journal.document_number,
        "posting_date": journal.posting_date.isoformat(),
        "currency": journal.currency,
        "lines": journal.lines,
    }


def left_out_message(left_out: list[dict]) -> str:
    parts = []
    for x in left_out:
        if x["reason"] == "currency":
            parts.append(f"{x['lines']} line(s) in {x['currency']} ({x['amount']}): no rate to convert them")
        else:
            parts.append(f"{x['lines']} line(s) without a GL account ({x['amount']} {x['currency']})")
    return "Left out: " + "; ".join(parts) + "." if parts else ""


# --- intent -----------------------------------------------------------------------------------------------


def _queue(journal: AccrualJournal, *, actor, action: str, message: str) -> None:
    """The journal's outbox row (once per entity, period, kind and attempt) and its event."""
    erp = erp_connection()
    key = write_key(f"accrual:{journal.entity.code}:{journal.period}", journal.kind, f"a{journal.attempt}")
    write, _ = OutboundWrite.objects.get_or_create(
        idempotency_key=key, defaults={"connection": erp, "action": POST_JOURNAL, "payload": journal_payload(journal)}
    )
    AccrualJournal.objects.filter(pk=journal.pk).update(write=write)
    journal.write = write
    AccrualJournalEvent.objects.create(
        journal=journal,
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        message=message,
        data={"idempotency_key": key, "amount": str(journal.amount), "currency": journal.currency},
    )
    jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)


@transaction.atomic(durable=True)
def accrual_post(*, entity: LegalEntity, period: str, actor) -> tuple[list[AccrualJournal], bool]:
    """Queue the period's accrual for the entity (and, after a refusal, post it again).

    Returns the entity's journals of the period and whether anything new was queued: asking again
    while the accrual is queued or posted changes nothing.
    """
    last_day, first_next = period_dates(period)
    if erp_connection() is None:
        raise WorkbenchError("No ERP connection is set up: nothing can be posted.")
    # Lock out a concurrent request for the same entity and period: the unique key decides.
    existing = {j.kind: j for j in AccrualJournal.objects.select_for_update().filter(entity=entity, period=period)}
    accrual, reversal = existing.get(Kind.ACCRUAL), existing.get(Kind.REVERSAL)
    changed = False
    if accrual is None or accrual.status in (Status.REFUSED, Status.FAILED):
        lines, left_out, total = accrual_lines(entity, period)
        if not lines:
            raise NothingToAccrue(
                f"Nothing received and not invoiced in {entity.currency} for {entity.code}: nothing to accrue "
                f"for {period}. {left_out_message(left_out)}".strip()
            )
        fields = {
            "document_number": document_number(entity, period, Kind.ACCRUAL),
            "posting_date": last_day,
            "amount": total,
            "currency": entity.currency,
            "lines": lines,
            "left_out": left_out,
            "status": Status.QUEUED,
            "message": left_out_message(left_out),
            "requested_by": actor if getattr(actor, "pk", None) else None,
            "requested_at": timezone.now(),
        }
        if accrual is None:
            accrual = AccrualJournal.objects.create(entity=entity, period=period, kind=Kind.ACCRUAL, **fields)
            action = "requested"
        else:
            for name, value in {**fields, "attempt": accrual.attempt + 1, "write": None}.items():
                setattr(accrual, name, value)
            accrual.save()
            action = "requested_again"
        _queue(
            accrual,
            actor=actor,
            action=action,
            message=f"Accrual {accrual.document_number} of {total} {entity.currency} dated {last_day} queued "
            f"for the ERP ({len(lines)} lines). {accrual.message}".strip(),
        )
        changed = True
    elif accrual.status == Status.POSTED and (reversal is None or reversal.status in (Status.REFUSED, Status.FAILED)):
        reversal = reversal_queue(accrual=accrual, actor=actor)
        changed = True
    journals = [j for j in (accrual, reversal) if j is not None]
    return journals, changed


def reversal_queue(*, accrual: AccrualJournal, actor=None) -> AccrualJournal:
    """Queue the reversal of a posted accrual (once; again after the ERP refused it). Runs inside the
    caller's transaction: the accrual's recorded answer, or a manager's request."""
    _, first_next = period_dates(accrual.period)
    lines = [{**ln, "amount": str(-Decimal(ln["amount"])), "description": f"Reversal: {ln['description']}"[:100]}
             for ln in accrual.lines]  # fmt: skip
    fields = {
        "document_number": document_number(accrual.entity, accrual.period, Kind.REVERSAL),
        "posting_date": first_next,
        "amount": -accrual.amount,
        "currency": accrual.currency,
        "lines": lines,
        "left_out": accrual.left_out,
        "status": Status.QUEUED,
        "message": "",
        "requested_by": accrual.requested_by,
        "requested_at": timezone.now(),
    }
    reversal, created = AccrualJournal.objects.get_or_create(
        entity=accrual.entity, period=accrual.period, kind=Kind.REVERSAL, defaults=fields
    )
    if not created:
        if reversal.status not in (Status.REFUSED, Status.FAILED):
            return reversal  # queued or posted already
        for name, value in {**fields, "attempt": reversal.attempt + 1, "write": None}.items():
            setattr(reversal, name, value)
        reversal.save()
    _queue(
        reversal,
        actor=actor,
        action="requested" if created else "requested_again",
        message=f"Reversal {reversal.document_number} of {reversal.amount} {reversal.currency} dated {first_next} "
        f"queued for the ERP (reverses {accrual.document_number}).",
    )
    return reversal


# --- outcomes (called by services/postings.py inside the transaction that records the answer) -------------


def _journal_of(write: OutboundWrite) -> AccrualJournal | None:
    return AccrualJournal.objects.select_related("entity").filter(write=write).first()


def _item_fp(journal: AccrualJournal) -> str:
    return f"ERP_REJECTED:accrual{journal.pk}"


def accrual_journal_posted(write: OutboundWrite, result) -> AccrualJournal | None:
    """The ERP booked the journal: posted with its time and number; an accrual's reversal is queued."""
    journal = _journal_of(write)
    if journal is None:
        return None
    data = result.data or {}
    now = timezone.now()
    AccrualJournal.objects.filter(pk=journal.pk).update(
        status=Status.POSTED, posted_at=now, erp_number=str(data.get("number") or journal.document_number)[:60]
    )
    journal.refresh_from_db()
    AccrualJournalEvent.objects.create(
        journal=journal,
        action="posted",
        message=result.message or f"Posted as {journal.erp_number}",
        data={"entries": data.get("entries"), "posting_date": str(data.get("posting_date") or "")},
    )
    exception_items_resolve(
        items=ExceptionItem.objects.filter(fingerprint=_item_fp(journal), status__in=ACTIVE_STATUSES),
        action="posted",
        reason=f"The ERP booked {journal.document_number}.",
    )
    if journal.kind == Kind.ACCRUAL:
        reversal_queue(accrual=journal)
    return journal


def accrual_journal_refused(write: OutboundWrite, *, code: str, message: str) -> AccrualJournal | None:
    """The ERP refused the journal: shown on the accruals screen and as a finance exception item."""
    journal = _journal_of(write)
    if journal is None:
        return None
    AccrualJournal.objects.filter(pk=journal.pk).update(status=Status.REFUSED, message=message[:2000])
    journal.refresh_from_db()
    AccrualJournalEvent.objects.create(journal=journal, action="refused", message=message, data={"code": code})
    _raise_item(journal, write, f"{code}: {message}", f"The ERP refused {journal.get_kind_display().lower()} "
                f"{journal.document_number} ({journal.entity.code}, {journal.period}): {message}")  # fmt: skip
    return journal


def accrual_journal_failed(write: OutboundWrite, *, error: str) -> AccrualJournal | None:
    """Delivery gave up: the journal is shown as not delivered; posting again from the screen retries."""
    journal = _journal_of(write)
    if journal is None:
        return None
    AccrualJournal.objects.filter(pk=journal.pk).update(status=Status.FAILED, message=error[:2000])
    journal.refresh_from_db()
    AccrualJournalEvent.objects.create(journal=journal, action="failed", message=error)
    _raise_item(journal, write, error, f"Could not deliver {journal.document_number} to the ERP: {error}")
    return journal


def _raise_item(journal: AccrualJournal, write: OutboundWrite, error: str, message: str) -> None:
    item = exception_item_raise(
        code="ERP_REJECTED",
        fp=_item_fp(journal),
        message=message,
        connection=write.connection,
        detail={"accrual_journal_id": journal.pk, "write_id": write.pk, "error": error[:2000]},
        amount=abs(journal.amount),
        currency=journal.currency,
        search_extra=f"{journal.document_number} {journal.entity.code} accrual",
    )
    # Raised without a document, so scope it to the journal's entity by hand.
    ExceptionItem.objects.filter(pk=item.pk, entity__isnull=True).update(entity_id=journal.entity_id)
