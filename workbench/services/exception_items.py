"""Exception item services: the state machine, and raising/resolving items from rule findings.

What an analyst does to an item (assign, override, retry, send back) is in `item_actions.py`,
one floor up: those actions reach the outbox and the worker, the state machine does not.

Every status change goes through `exception_item_transition`, which checks the transition table,
does a compare-and-set UPDATE and appends an ExceptionEvent.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from workbench.errors import InvalidTransition, StaleUpdate
from workbench.models import Document, ExceptionEvent, ExceptionGroup, ExceptionItem, OverrideRequest
from workbench.models.exceptions import ACTIVE_STATUSES, Status
from workbench.rules import CODES, Finding
from workbench.search import fold
from workbench.selectors.calendars import Calendars, document_close_due
from workbench.services.calendars import exception_items_close_due_set
from workbench.services.watchers import watchers_note, watchers_note_many

TRANSITIONS: dict[str, set[str]] = {
    Status.OPEN: {Status.IN_PROGRESS, Status.WAITING, Status.RESOLVED, Status.OVERRIDDEN},
    Status.IN_PROGRESS: {Status.OPEN, Status.WAITING, Status.RESOLVED, Status.OVERRIDDEN},
    Status.WAITING: {Status.OPEN, Status.RESOLVED},
    Status.RESOLVED: {Status.OPEN},
    Status.OVERRIDDEN: set(),
}


def exception_item_transition(
    *, item: ExceptionItem, to: str, actor=None, reason: str = "", action: str = ""
) -> ExceptionItem:
    frm = item.status
    if to not in TRANSITIONS[frm]:
        raise InvalidTransition(
            f"An item that is {item.get_status_display().lower()} cannot become {Status(to).label.lower()}."
        )
    if to == Status.OVERRIDDEN and (not reason.strip() or actor is None):
        raise InvalidTransition("An override needs a reason and a person.")
    now = timezone.now()
    changes = {"status": to, "updated_at": now}
    if to in (Status.RESOLVED, Status.OVERRIDDEN):
        changes["resolved_at"] = now
    elif frm in (Status.RESOLVED,):
        changes["resolved_at"] = None
    if frm == Status.WAITING:  # whatever ends the wait ends a snooze too (services/snooze.py)
        changes.update(snoozed_until=None, wait_for="", wait_key="")
    with transaction.atomic():
        if ExceptionItem.objects.filter(pk=item.pk, status=frm).update(**changes) != 1:
            raise StaleUpdate("This item was changed by someone else. Reload to see its current state.")
        event = ExceptionEvent.objects.create(
            item=item,
            at=now,
            action=action or to,
            from_status=frm,
            to_status=to,
            actor=actor,
            reason=reason,
            correlation_id=item.correlation_id,
        )
        watchers_note(event, item)  # told after commit, one query per transaction when nobody watches
    for k, v in changes.items():
        setattr(item, k, v)
    return item


def _event(item, action, actor=None, reason="", now=None):
    return ExceptionEvent(
        item=item,
        at=now or timezone.now(),
        action=action,
        from_status=item.status,
        to_status=item.status,
        actor=actor,
        reason=reason,
        correlation_id=item.correlation_id,
    )


def _groups_for(keys: set[str], codes: dict[str, str], titles: dict[str, str]) -> dict[str, ExceptionGroup]:
    if not keys:
        return {}
    existing = {g.root_cause_key: g for g in ExceptionGroup.objects.filter(root_cause_key__in=keys)}
    missing = [ExceptionGroup(root_cause_key=k, code=codes[k], title=titles[k]) for k in keys if k not in existing]
    if missing:
        ExceptionGroup.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {g.root_cause_key: g for g in ExceptionGroup.objects.filter(root_cause_key__in=keys)}
    return existing


def _group_title(code: str, entity_code: str, cause: str) -> str:
    title = f"{CODES[code].title}: {cause}" if cause else CODES[code].title
    return f"{title} ({entity_code})" if entity_code else title


def search_text(code: str, message: str, doc: Document | None, connection=None) -> str:
    """What the queue's free-text search matches: the item's words and its document's names and numbers."""
    parts = [code, message]
    if doc is not None:
        parts += [
            doc.number,
            doc.name,
            doc.party_code,
            doc.party_name,
            doc.entity_code,
            doc.source_id,
            doc.erp_document_number,
        ]
    if connection is not None:
        parts.append(connection.name)
    return fold(" | ".join(p for p in parts if p))


def fingerprint(code: str, doc: Document | None, line=None, extra: str = "") -> str:
    parts = [code, f"doc{doc.pk}" if doc else "", f"line{line.pk}" if line else "", extra]
    return ":".join(p for p in parts if p)


@transaction.atomic
def exception_items_reconcile(
    *, results: Iterable[tuple[Document, list[Finding]]], codes: Iterable[str], actor=None, cause: str = ""
) -> list[Document]:
    """Make the open items of `codes` on these documents match the rules' findings.

    New findings raise items (or reopen a resolved one with the same fingerprint); items whose rule
    now passes are resolved, with the rule as the cause. Overridden items stay overridden.
    Returns the documents that have no active blocking item left.
    """
    results = list(results)
    codes = set(codes)
    now = timezone.now()
    cals = Calendars()  # SLAs in business hours: each entity's calendar loaded once for the batch
    doc_ids = [d.pk for d, _ in results]
    existing: dict[str, ExceptionItem] = {
        i.fingerprint: i for i in ExceptionItem.objects.filter(document_id__in=doc_ids, code__in=codes)
    }
    wanted: dict[str, tuple[Document, Finding]] = {}
    for doc, findings in results:
        for f in findings:
            wanted[fingerprint(f.code, doc, f.line)] = (doc, f)

    keys, key_codes, key_titles = set(), {}, {}
    for doc, f in wanted.values():
        if f.root_cause:
            k = f"{f.code}:{doc.entity_code}:{f.root_cause}"
            keys.add(k)
            key_codes[k] = f.code
            key_titles[k] = _group_title(f.code, doc.entity_code, f.root_cause)
    groups = _groups_for(keys, key_codes, key_titles)

    # Items waiting for a manager to approve their override keep waiting (one query for the batch).
    held = set(
        OverrideRequest.objects.filter(
            item_id__in=[i.pk for i in existing.values() if i.status == Status.WAITING],
            state=OverrideRequest.State.PENDING,
        ).values_list("item_id", flat=True)
    )
    # So do snoozed items: a person chose to wait for a date or an event, not for this re-validation.
    held |= {i.pk for i in existing.values() if i.snoozed}
    new_items, events, reopened = [], [], []
    for fp, (doc, f) in wanted.items():
        item = existing.get(fp)
        spec = CODES[f.code]
        if item is None:
            rck = f"{f.code}:{doc.entity_code}:{f.root_cause}" if f.root_cause else ""
            amount = f.line.amount if f.line is not None else doc.total
            new_items.append(
                ExceptionItem(
                    fingerprint=fp,
                    code=f.code,
                    category=spec.category,
                    kind=spec.kind,
                    severity=spec.severity,
                    status=Status.OPEN,
                    message=f.message,
                    document=doc,
                    line=f.line,
                    entity_id=doc.entity_id,
                    amount_at_risk=amount,
                    currency=doc.currency,
                    owner_team=spec.owner_team,
                    root_cause_key=rck,
                    group=groups.get(rck),
                    detail=f.detail,
                    correlation_id=doc.correlation_id,
                    search=search_text(f.code, f.message, doc),
                    opened_at=now,
                    sla_due_at=cals.sla_due(doc.entity_id, spec.sla_hours, now),
                )
            )
        elif item.status == Status.RESOLVED:
            reopened.append(item.pk)
            ExceptionItem.objects.filter(pk=item.pk).update(
                message=f.message, search=search_text(f.code, f.message, doc)
            )
            exception_item_transition(
                item=item, to=Status.OPEN, reason="The rule fires again: " + f.message, action="reopened"
            )
        elif item.status == Status.WAITING and item.pk not in held:
            # A fix was tried and the rule still fails: back to a person, with the new words.
            # (An item waiting for a manager to approve its override keeps waiting for them.)
            ExceptionItem.objects.filter(pk=item.pk).update(
                message=f.message, search=search_text(f.code, f.message, doc)
            )
            exception_item_transition(
                item=item, to=Status.OPEN, reason="Re-validated: " + f.message, action="still_failing"
            )
            reopened.append(item.pk)
    if new_items:
        ExceptionItem.objects.bulk_create(new_items)
        for item in new_items:
            events.append(
                ExceptionEvent(
                    item=item,
                    at=now,
                    action="raised",
                    to_status=Status.OPEN,
                    reason=item.message,
                    correlation_id=item.correlation_id,
                )
            )
    for fp, item in existing.items():
        if fp not in wanted and item.status in ACTIVE_STATUSES:
            exception_item_transition(
                item=item,
                to=Status.RESOLVED,
                actor=actor,
                action="mapping_rule" if cause else "rule_passed",
                reason=f"{item.code} passes on re-validation" + (f" — {cause}" if cause else "."),
            )
    if events:
        ExceptionEvent.objects.bulk_create(events)
        watchers_note_many(events, {i.pk: i for i in new_items})  # the documents' watchers hear of new items
    if new_items or reopened:
        exception_items_close_due_set(item_ids=[i.pk for i in new_items if i.pk] + reopened, cals=cals)

    # Only the rules just run decide: an ERP refusal or a dead write waits for a person, and that
    # person's fix or retry is what re-posts (enqueue_postings makes it a new revision).
    blocked = set(
        ExceptionItem.objects.filter(
            document_id__in=doc_ids, status__in=ACTIVE_STATUSES, code__in=[c for c in codes if CODES[c].blocking]
        ).values_list("document_id", flat=True)
    )
    return [d for d, _ in results if d.pk not in blocked]


def nul_free(value):
    """The value without NUL bytes, in strings, dict keys and values and lists alike (PostgreSQL's
    text and JSON columns refuse them)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {nul_free(k): nul_free(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nul_free(v) for v in value]
    return value


def exception_item_raise(
    *,
    code: str,
    message: str,
    fp: str,
    document: Document | None = None,
    line=None,
    connection=None,
    detail: dict | None = None,
    root_cause: str = "",
    amount=None,
    currency: str = "",
    search_extra: str = "",
) -> ExceptionItem:
    """Raise (or reopen) one item outside the rules: ERP rejections, outages, dead writes."""
    # What a vendor said goes into the item's words: a NUL byte in it must not fail the item on PostgreSQL.
    message, detail, search_extra = nul_free(message), nul_free(detail), nul_free(search_extra)
    spec = CODES[code]
    now = timezone.now()
    with transaction.atomic():
        item = ExceptionItem.objects.filter(fingerprint=fp).first()
        if item is None:
            item = _create_raised(
                code=code,
                message=message,
                fp=fp,
                document=document,
                line=line,
                connection=connection,
                detail=detail,
                root_cause=root_cause,
                amount=amount,
                currency=currency,
                search_extra=search_extra,
                spec=spec,
                now=now,
            )
        if item.message != message or item.status in (Status.RESOLVED, Status.WAITING):
            ExceptionItem.objects.filter(pk=item.pk).update(
                message=message, detail=detail or item.detail, search=search_text(code, message, document, connection)
            )
            item.message = message
            if item.status == Status.RESOLVED or (
                item.status == Status.WAITING and not item.snoozed and not _override_pending(item)
            ):
                exception_item_transition(item=item, to=Status.OPEN, reason=message, action="reopened")
                if document is not None:  # its document may now post into a later period
                    item.close_due_at = document_close_due(document.pk)
                    ExceptionItem.objects.filter(pk=item.pk).update(close_due_at=item.close_due_at)
    return item


def _override_pending(item: ExceptionItem) -> bool:
    return OverrideRequest.objects.filter(item_id=item.pk, state=OverrideRequest.State.PENDING).exists()


def _create_raised(
    *, code, message, fp, document, line, connection, detail, root_cause, amount, currency, search_extra, spec, now
) -> ExceptionItem:
    """Create the item; if a concurrent worker created it first, use theirs (one item per cause)."""
    cals = Calendars()  # one load for this item's SLA and close deadline
    try:
        with transaction.atomic():
            entity_code = document.entity_code if document else ""
            rck = f"{code}:{entity_code}:{root_cause}" if root_cause else ""
            group = (
                _groups_for({rck}, {rck: code}, {rck: _group_title(code, entity_code, root_cause)}).get(rck)
                if rck
                else None
            )
            item = ExceptionItem.objects.create(
                fingerprint=fp,
                code=code,
                category=spec.category,
                kind=spec.kind,
                severity=spec.severity,
                message=message,
                document=document,
                line=line,
                connection=connection,
                entity_id=document.entity_id if document else None,
                amount_at_risk=(line.amount if line else document.total) if document else (amount or 0),
                currency=document.currency if document else (currency or "USD"),
                owner_team=spec.owner_team,
                root_cause_key=rck,
                group=group,
                detail=detail or {},
                search=(search_text(code, message, document, connection) + " " + fold(search_extra)).strip(),
                correlation_id=document.correlation_id if document else None,
                opened_at=now,
                sla_due_at=cals.sla_due(document.entity_id if document else None, spec.sla_hours, now),
                close_due_at=document_close_due(document.pk, cals) if document else None,
            )
            event = ExceptionEvent.objects.create(
                item=item,
                at=now,
                action="raised",
                to_status=Status.OPEN,
                reason=message,
                correlation_id=item.correlation_id,
            )
            watchers_note(event, item)
            return item
    except IntegrityError:
        return ExceptionItem.objects.get(fingerprint=fp)


def exception_items_create(*, items: list[ExceptionItem], now) -> None:
    """Store new items, each with its "raised" event, in bulk (for callers raising thousands at once)."""
    if not items:
        return
    ExceptionItem.objects.bulk_create(items, batch_size=500)
    if any(i.pk is None for i in items):  # a database that does not return ids from bulk inserts
        ids = dict(
            ExceptionItem.objects.filter(fingerprint__in=[i.fingerprint for i in items]).values_list(
                "fingerprint", "pk"
            )
        )
        for i in items:
            i.pk = i.id = ids[i.fingerprint]
    events = ExceptionEvent.objects.bulk_create(
        [
            ExceptionEvent(
                item=i,
                at=now,
                action="raised",
                to_status=Status.OPEN,
                reason=i.message,
                correlation_id=i.correlation_id,
            )
            for i in items
        ],
        batch_size=500,
    )
    watchers_note_many(events, {i.pk: i for i in items})


def exception_items_resolve(*, items: Iterable[ExceptionItem], reason: str, action: str, actor=None) -> int:
    n = 0
    for item in items:
        if item.status in ACTIVE_STATUSES:
            exception_item_transition(item=item, to=Status.RESOLVED, actor=actor, reason=reason, action=action)
            n += 1
    return n


def waiting_items_of(document: Document):
    return ExceptionItem.objects.filter(document=document, status__in=ACTIVE_STATUSES)


def mark_waiting(*, document: Document, actor, reason: str) -> None:
    for item in waiting_items_of(document).exclude(status=Status.WAITING):
        exception_item_transition(item=item, to=Status.WAITING, actor=actor, reason=reason, action="fix_applied")
