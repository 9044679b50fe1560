"""Drift is work: what the nightly reconciliation finds becomes exception items, and their fixes.

`RECONCILIATION_DRIFT`: one item per (ERP connection, master-data stream) naming the records that
differ. `POSTING_DRIFT`: one item per posted document the ERP no longer holds as we posted it, and
one per (entity, period, currency) whose proof does not tie out for a reason no document explains.
Both resolve themselves (verified) when a later reconciliation finds nothing there.

The fixes a person takes from the item: pull the stream again in full, accept the ERP's values of
the named records (through field ownership: the ERP owns master data), or re-post a document the
ERP lost as a new revision. Each leaves the item waiting for the next reconciliation to judge it.

The reconciliation itself (reading the ERP) is sync's (sync/reconcile.py, sync/reconcile_postings.py);
it hands its findings here as plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workbench import jobs
from workbench.errors import InvalidTransition, WorkbenchError
from workbench.ledger_proof import DocumentDrift, Line
from workbench.models import (
    Budget,
    Connection,
    Document,
    DocumentLine,
    ErpPosting,
    ExceptionEvent,
    ExceptionItem,
    LegalEntity,
    OutboundWrite,
    ReconciliationSettings,
)
from workbench.models.exceptions import ACTIVE_STATUSES, Status
from workbench.money import fmt
from workbench.services import masterdata
from workbench.services.audit import acting_as, audit_record
from workbench.services.exception_items import exception_item_raise, exception_item_transition, exception_items_resolve
from workbench.services.postings import POSTING_ACTIONS, posting_payload
from workbench.services.trace import document_event_add
from workbench.streams import STREAMS

DRIFT = "RECONCILIATION_DRIFT"
POSTING = "POSTING_DRIFT"
NAMED = 200  # records an item lists (and a person can accept); the rest are counted, and listed again next run
REPOSTABLE = frozenset({ErpPosting.Kind.EXPENSE_REPORT, ErpPosting.Kind.SUPPLIER_INVOICE})
KIND_WORDS = {"added": "added in the ERP", "changed": "changed in the ERP", "deleted": "deleted in the ERP"}


def drift_fingerprint(connection: Connection, stream: str) -> str:
    return f"{DRIFT}:conn{connection.pk}:{stream}"


def _describe(rec: dict) -> str:
    if rec["kind"] == "changed":
        return f"{rec['key']} ({', '.join(sorted(rec['diffs']))})"
    return f"{rec['key']} ({KIND_WORDS[rec['kind']]})"


def _drift_message(run_id: int, stream: str, records: list[dict], total: int) -> str:
    names = "; ".join(_describe(r) for r in records[:5])
    more = f"; and {total - 5} more" if total > 5 else ""
    what = "record of {} differs" if total == 1 else "records of {} differ"
    return f"Reconciliation #{run_id}: {total} {what.format(stream.replace('_', ' '))} from the ERP: {names}{more}."


@transaction.atomic(durable=True)
def reconciliation_drift_record(
    *,
    connection: Connection,
    run_id: int,
    streams: Iterable[str],
    drift: Mapping[str, list[dict]],
    counts: Mapping[str, Mapping[str, int]] | None = None,
) -> list[ExceptionItem]:
    """After a finished master-data comparison: raise (or update, or reopen) one item per stream with
    drift, and resolve the item of every compared stream that has none now.

    ``drift``: stream -> its drift rows as dicts (key, parts, kind, diffs {field: [ours, the ERP's]},
    erp_id), the first NAMED by key; ``counts``: stream -> {added, changed, deleted} of all of them.
    """
    raised = []
    for stream in streams:
        records = list(drift.get(stream) or [])
        fp = drift_fingerprint(connection, stream)
        kinds = {k: (counts or {}).get(stream, {}).get(k, 0) for k in KIND_WORDS}
        if not any(kinds.values()):
            kinds = {k: sum(1 for r in records if r["kind"] == k) for k in KIND_WORDS}
        total = max(sum(kinds.values()), len(records))
        if not records:
            exception_items_resolve(
                items=ExceptionItem.objects.filter(fingerprint=fp),
                action="reconciled",
                reason=f"Reconciliation #{run_id} finds {stream.replace('_', ' ')} of {connection.name} "
                "matching the ERP.",
            )
            continue
        named = sorted(records, key=lambda r: r["key"])[:NAMED]
        item = exception_item_raise(
            code=DRIFT,
            message=_drift_message(run_id, stream, named, total),
            fp=fp,
            connection=connection,
            root_cause=f"{connection.name} · {stream.replace('_', ' ')}",
            detail={
                "run_id": run_id,
                "connection_id": connection.pk,
                "stream": stream,
                "count": total,
                "kinds": kinds,
                "records": [
                    {
                        "key": r["key"],
                        "parts": list(r.get("parts") or []),
                        "kind": r["kind"],
                        "diffs": r["diffs"],
                        "erp_id": r.get("erp_id", ""),
                    }
                    for r in named
                ],
            },
            search_extra=" ".join([stream, *(r["key"] for r in named)])[:4000],
        )
        raised.append(item)
    return raised


# --- posted documents and the proof -------------------------------------------------------------------


def _posting_detail(run_id: int, drift: DocumentDrift, posting: ErpPosting) -> dict:
    return {
        "run_id": run_id,
        "connection_id": posting.connection_id,
        "posting_id": posting.pk,
        "kind": posting.kind,
        "erp_id": posting.erp_id,
        "erp_number": posting.erp_number,
        "reference": posting.reference,
        "period": posting.period,
        "why": drift.why,
        "ours": str(drift.ours),
        "erp": str(drift.erp),
        "currency": posting.currency,
        "repostable": drift.why in ("missing", "canceled")
        and posting.document is not None
        and posting.document.financial_status != Document.FinancialStatus.PAID
        and posting.kind in REPOSTABLE
        and posting.document_id is not None,
    }


def _with_amount(item: ExceptionItem, *, amount, currency: str, entity_id) -> None:
    """The amount at risk is the difference, not the document's total (what exception_item_raise assumes)."""
    ExceptionItem.objects.filter(pk=item.pk).update(amount_at_risk=abs(amount), currency=currency, entity_id=entity_id)


def _repost_pending(item: ExceptionItem) -> bool:
    write_id = item.detail.get("repost_write_id")
    return (
        bool(write_id)
        and OutboundWrite.objects.filter(
            pk=write_id, status__in=[OutboundWrite.Status.PENDING, OutboundWrite.Status.SENDING]
        ).exists()
    )


@transaction.atomic(durable=True)
def posting_drift_record(
    *, connection: Connection, run_id: int, drifts: list[DocumentDrift], lines: list[Line]
) -> list[ExceptionItem]:
    """After the posted documents were looked up again: raise an item per document the ERP lost or
    holds otherwise, and one per proof line whose difference no such document explains; resolve
    this connection's others (a re-post still on its way keeps its item waiting)."""
    postings = ErpPosting.objects.in_bulk([d.posted.key for d in drifts])
    codes = dict(LegalEntity.objects.values_list("pk", "code"))
    wanted: list[ExceptionItem] = []
    explained: dict[tuple, object] = {}
    for d in drifts:
        posting = postings[d.posted.key]
        name = posting.erp_number or posting.reference or posting.erp_id
        doc = posting.document
        item = exception_item_raise(
            code=POSTING,
            message=f"Reconciliation #{run_id}: {posting.get_kind_display()} {name} — {d.message()}",
            fp=f"{POSTING}:posting{posting.pk}",
            document=doc,
            connection=connection,
            detail=_posting_detail(run_id, d, posting),
            search_extra=f"{posting.erp_number} {posting.reference} {posting.erp_id}",
        )
        _with_amount(item, amount=d.difference, currency=posting.currency, entity_id=posting.entity_id)
        key = (posting.entity_id, posting.period, posting.currency)
        explained[key] = explained.get(key, 0) + d.difference
        wanted.append(item)
    for ln in lines:
        rest = ln.difference - explained.get((ln.entity, ln.period, ln.currency), 0)
        if not rest:
            continue
        where = f"{codes.get(ln.entity, ln.entity)} {ln.period} {ln.currency}"
        item = exception_item_raise(
            code=POSTING,
            message=(
                f"Reconciliation #{run_id}: the books of {where} do not tie out: we posted "
                f"{fmt(ln.ours, ln.currency)}, the ERP holds {fmt(ln.erp, ln.currency)} for those documents "
                f"({fmt(rest, ln.currency)} unexplained)."
            ),
            fp=f"{POSTING}:proof:conn{connection.pk}:{ln.entity}:{ln.period}:{ln.currency}",
            connection=connection,
            detail={
                "run_id": run_id,
                "connection_id": connection.pk,
                "entity_id": ln.entity,
                "period": ln.period,
                "currency": ln.currency,
                "ours": str(ln.ours),
                "erp": str(ln.erp),
                "repostable": False,
            },
            search_extra=where,
        )
        _with_amount(item, amount=rest, currency=ln.currency, entity_id=ln.entity)
        wanted.append(item)
    keep = {i.pk for i in wanted}
    gone = [
        i
        for i in ExceptionItem.objects.filter(code=POSTING, connection=connection, status__in=ACTIVE_STATUSES)
        if i.pk not in keep and not _repost_pending(i)
    ]
    exception_items_resolve(
        items=gone,
        action="reconciled",
        reason=f"Reconciliation #{run_id} finds the ERP holding what was posted.",
    )
    return wanted


# --- fixes ---------------------------------------------------------------------------------------------


def _to_waiting(item: ExceptionItem, *, actor, action: str, reason: str) -> None:
    if item.status == Status.WAITING:
        ExceptionEvent.objects.create(
            item=item,
            action=action,
            from_status=item.status,
            to_status=item.status,
            actor=actor,
            reason=reason,
            correlation_id=item.correlation_id,
        )
    else:
        exception_item_transition(item=item, to=Status.WAITING, actor=actor, action=action, reason=reason)


def _drift_item(item: ExceptionItem) -> tuple[Connection, str]:
    if item.code != DRIFT:
        raise InvalidTransition("Only a reconciliation drift item can be fixed this way.")
    if not item.is_active:
        raise InvalidTransition("This item is closed; the next reconciliation reopens it if the drift is back.")
    connection = Connection.objects.filter(pk=item.detail.get("connection_id")).first()
    if connection is None:
        raise InvalidTransition("The connection this drift was found on no longer exists.")
    return connection, str(item.detail.get("stream") or "")


@transaction.atomic(durable=True)
def drift_pull_again(*, item: ExceptionItem, actor) -> ExceptionItem:
    """Queue one full read of the stream (its cursor ignored, not moved): changes the ERP made
    without a new timestamp come in through the usual upsert and its field ownership."""
    connection, stream = _drift_item(item)
    _to_waiting(item, actor=actor, action="pull_again", reason=f"Full pull of {stream} from {connection.name} queued")
    jobs.enqueue_on_commit(jobs.PULL_STREAM_FULL, connection_id=connection.pk, stream=stream)
    return item


def _record(stream: str, rec: dict) -> dict | None:
    """An ERP record rebuilt from a drift row: its key and the ERP's side of the differing fields."""
    parts = rec.get("parts") or []
    if len(parts) != (4 if stream == "budgets" else 1 if stream == "legal_entities" else 2):
        return None
    theirs = {f: v[1] for f, v in rec["diffs"].items() if f != "erp_id"}
    erp_id = (rec["diffs"].get("erp_id") or [None, None])[1] or rec.get("erp_id") or ""
    if stream == "legal_entities":
        return {"code": parts[0], **theirs, "external_id": erp_id}
    if stream == "budgets":
        entity, cost_center, gl_account, period = parts
        return {
            "entity": entity,
            "cost_center": cost_center,
            "gl_account": gl_account,
            "period": period,
            **theirs,
            "external_id": erp_id,
        }
    return {"entity": parts[0], "code": parts[1], **theirs, "external_id": erp_id}


def _apply(stream: str, records: list[dict]) -> tuple[int, list[str]]:
    """Upsert rebuilt ERP records as the master-data sync would (source ERP, field ownership applies).
    The upsert writes only the fields every record of a call carries: one call per set of fields."""
    if stream == "legal_entities":  # the entity upsert writes every field: fill the unchanged ones
        current = {e.code: e for e in LegalEntity.objects.filter(code__in=[r["code"] for r in records])}
        for r in records:
            e = current.get(r["code"])
            r.setdefault("name", e.name if e else "")
            r.setdefault("currency", e.currency if e else "USD")
    if stream == "budgets":
        current = {
            (b.entity.code, b.cost_center, b.gl_account, b.period): b.amount
            for b in Budget.objects.filter(period__in={r["period"] for r in records}).select_related("entity")
        }
        for r in records:
            r.setdefault("amount", current.get((r["entity"], r["cost_center"], r["gl_account"], r["period"]), 0))
    stored, errors = 0, []
    by_fields: dict[frozenset, list[dict]] = {}
    for r in records:
        by_fields.setdefault(frozenset(r), []).append(r)
    for group in by_fields.values():
        n, errs = masterdata.masterdata_upsert(stream=stream, records=group, source="erp")
        stored += n
        errors += errs
    return stored, errors


def _deactivate(stream: str, records: list[dict]) -> int:
    """A record the ERP deleted: made inactive here where the model has a flag for it (documents
    may name it, and its history stays readable), removed otherwise (documents name master data by
    code, never by a foreign key, so nothing cascades)."""
    if stream not in STREAMS:
        return 0
    model = STREAMS[stream][0]
    names = {f.name for f in model._meta.get_fields()}
    if "active" in names:
        changes = {"active": False}
    elif "status" in names and stream == "employees":
        changes = {"status": "inactive"}
    else:
        changes = None
    n = 0
    for r in records:
        rows = model.objects.filter(entity__code=r["entity"], code=r["code"])
        n += rows.update(**changes) if changes else rows.delete()[0]
    return n


@transaction.atomic(durable=True)
def drift_accept_erp_values(*, item: ExceptionItem, actor) -> int:
    """Apply the ERP's values of the records the item names (the ERP owns master data): added and
    changed records are upserted through field ownership, deleted ones made inactive. Audited with the
    person; the item waits for the next reconciliation to confirm. Returns the records applied."""
    connection, stream = _drift_item(item)
    named = item.detail.get("records") or []
    upserts, deletes, skipped = [], [], 0
    for rec in named:
        rebuilt = _record(stream, rec)
        if rebuilt is None:
            skipped += 1
        elif rec["kind"] == "deleted":
            deletes.append(rebuilt)
        else:
            upserts.append(rebuilt)
    if not upserts and not deletes:
        raise WorkbenchError("This item names no record whose ERP values can be applied.")
    with acting_as(actor):
        stored, errors = _apply(stream, upserts) if upserts else (0, [])
        deactivated = _deactivate(stream, deletes)
    applied = stored + deactivated
    if not applied and errors:  # nothing could be applied: say why, and leave the item with its person
        raise WorkbenchError("None of the ERP's values could be applied: " + "; ".join(errors[:3]))
    audit_record(
        source="workbench.ExceptionItem",
        row_id=item.pk,
        action="erp_values_accepted",
        data={
            "connection": connection.name,
            "stream": stream,
            "records": [r["key"] for r in named][:NAMED],
            "applied": applied,
            "errors": errors[:20],
        },
        actor=actor,
    )
    reason = f"The ERP's values of {applied} {stream.replace('_', ' ')} record(s) applied"
    if errors or skipped:
        reason += f"; {len(errors) + skipped} could not be applied ({'; '.join(errors[:3])})".rstrip(" ()")
    _to_waiting(item, actor=actor, action="erp_values_accepted", reason=reason)
    return applied


@transaction.atomic(durable=True)
def posting_repost(*, item: ExceptionItem, actor) -> OutboundWrite:
    """Post again a document the ERP lost, as a new revision (a new idempotency key, so a new ERP
    document); the lost posting stays as history, no longer summed by the proof."""
    if item.code != POSTING or not item.is_active:
        raise InvalidTransition("Only an open posting drift item can be re-posted.")
    posting = (
        ErpPosting.objects.select_related("document", "connection").filter(pk=item.detail.get("posting_id")).first()
    )
    if posting is None or not item.detail.get("repostable"):
        raise InvalidTransition(
            "This drift cannot be fixed by posting again: correct the document in the ERP, "
            "and the next reconciliation resolves the item."
        )
    if _repost_pending(item):
        raise InvalidTransition("A re-post of this document is already on its way to the ERP.")
    if posting.superseded_at is not None:
        raise InvalidTransition("This posting was replaced already.")
    doc = posting.document
    if doc.kind not in POSTING_ACTIONS:
        raise InvalidTransition("Only expense reports and supplier invoices can be re-posted from here.")
    if doc.financial_status == Document.FinancialStatus.PAID:
        raise InvalidTransition(
            "This document is paid: posting it again would open a second payable for it. Restore the "
            "document in the ERP (or book it there by hand); the next reconciliation resolves the item."
        )
    # Compare-and-set on the revision: of two re-posts at once only one bumps, or both would post.
    if not Document.objects.filter(pk=doc.pk, revision=doc.revision).update(revision=F("revision") + 1):
        raise InvalidTransition("The document changed meanwhile; reload and try again.")
    doc.refresh_from_db()
    # The lost posting stays counted (the books are still short) until the ERP books the re-post:
    # postings.write_succeeded supersedes it then.
    lines = list(DocumentLine.objects.filter(document=doc).select_related("po_line").order_by("line_no"))
    lost = posting.erp_number or posting.reference or posting.erp_id
    write = OutboundWrite.objects.create(
        connection=posting.connection,
        document=doc,
        action=POSTING_ACTIONS[doc.kind],
        idempotency_key=doc.posting_key,
        # reposted_from: the answer updates the already-posted document's ERP number (postings.write_succeeded)
        payload={**posting_payload(doc, lines), "reposted_from": lost},
    )
    ExceptionItem.objects.filter(pk=item.pk).update(detail={**item.detail, "repost_write_id": write.pk})
    item.detail = {**item.detail, "repost_write_id": write.pk}
    document_event_add(
        document=doc,
        system="workbench",
        action="reposted",
        message=f"Posted again as {write.payload.get('document_number')}: the ERP lost {lost}",
        actor=actor,
    )
    _to_waiting(item, actor=actor, action="reposted", reason=f"Re-post queued: the ERP lost {lost}")
    jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)
    return write


# --- retention ------------------------------------------------------------------------------------------


def reconciliation_settings_get() -> ReconciliationSettings:
    """The one settings row, or its defaults (unsaved) until an admin first changes them."""
    return ReconciliationSettings.objects.filter(pk=1).first() or ReconciliationSettings(pk=1)


def reconciliation_retention_cutoff(now=None):
    """Runs started before this lose their drift rows and proof lines."""
    return (now or timezone.now()) - timedelta(days=reconciliation_settings_get().retention_days)


@transaction.atomic(durable=True)
def reconciliation_retention_set(*, days: int, actor) -> ReconciliationSettings:
    if not 1 <= days <= 3650:
        raise WorkbenchError("Keep reconciliation detail between 1 and 3,650 days.")
    settings = reconciliation_settings_get()
    if settings._state.adding or settings.retention_days != days:
        settings.retention_days = days
        with acting_as(actor):  # the config-change signal records who
            settings.save()
    return settings
