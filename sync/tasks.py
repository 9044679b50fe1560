"""Celery tasks: thin adapters that fetch by id and call sync/workbench code.

All are idempotent (safe to run twice) and acknowledged late, so a killed worker's task is
redelivered and simply runs again.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import transaction

from sync import pull, push
from sync.health import check_connection
from sync.models import OutboundWrite, SyncRun
from workbench.models import Connection, Document

log = logging.getLogger(__name__)


@shared_task(name="sync.run_job", acks_late=True)
def run_job_task(run_id: int) -> str:
    run = SyncRun.objects.select_related("connection").filter(pk=run_id).first()
    if run is None or run.finished:
        return "gone"
    return pull.run_job(run).status


@shared_task(name="sync.scheduled_job", acks_late=True)
def scheduled_job_task(connection: str, job: str) -> str:
    """What beat calls: one run of `job` on the connection named `connection`."""
    conn = Connection.objects.filter(name=connection).first()
    if conn is None or not conn.enabled:
        return "no such enabled connection"
    run = SyncRun.objects.create(connection=conn, job=job, triggered_by="schedule")
    return pull.run_job(run).status


@shared_task(name="sync.process_outbox", acks_late=True)
def process_outbox_task() -> int:
    return push.drain()


@shared_task(name="sync.revalidate_document", acks_late=True)
def revalidate_document_task(document_id: int, actor_id: int | None = None, repost: bool = False) -> str:
    from workbench.services.documents import document_event_add
    from workbench.services.validation import documents_validate

    doc = Document.objects.filter(pk=document_id).first()
    if doc is None:
        return "gone"
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    with transaction.atomic():
        clean = documents_validate(documents=[doc], actor=actor)
        document_event_add(document=doc, system="workbench", action="revalidated",
                           message="Re-validated: " + ("all rules pass" if clean else "still has open exceptions"), actor=actor)
        if clean and repost:
            push.enqueue_postings(clean)
        if clean and doc.kind == Document.Kind.REQUISITION and doc.business_status == Document.BusinessStatus.PENDING:
            from sync.p2p import requisition_send_for_approval

            requisition_send_for_approval(doc)  # a fixed or overridden requisition goes on to its approvers
        elif not clean:
            _reopen_waiting_on(doc, actor)
    return "clean" if clean else "blocked"


def _reopen_waiting_on(doc: Document, actor) -> None:
    """A retry that re-validation stops goes back to a person, pointing at what blocks it."""
    from workbench.models import ExceptionItem
    from workbench.rules import RULES
    from workbench.services.exception_items import exception_item_transition

    blocking = list(ExceptionItem.objects.filter(document=doc, status__in=["open", "in_progress"], code__in=list(RULES))
                    .values_list("code", flat=True))
    for item in ExceptionItem.objects.filter(document=doc, status="waiting").exclude(code__in=list(RULES)):
        exception_item_transition(item=item, to="open", actor=actor, action="still_blocked",
                                  reason="Not re-posted: fix " + ", ".join(sorted(set(blocking))) + " first.")


@shared_task(name="sync.replay_write", acks_late=True)
def replay_write_task(write_id: int, actor_id: int | None = None) -> str:
    write = OutboundWrite.objects.filter(pk=write_id).first()
    if write is None:
        return "gone"
    push.replay(write)
    return "queued"


@shared_task(name="sync.check_connection", acks_late=True)
def check_connection_task(connection_id: int) -> bool:
    conn = Connection.objects.filter(pk=connection_id).first()
    return bool(conn and check_connection(conn))


@shared_task(name="sync.check_connections", acks_late=True)
def check_connections_task() -> int:
    """Probe connections that are down (and any never checked); recovery releases held writes."""
    n = 0
    for conn in Connection.objects.filter(enabled=True).exclude(health=Connection.Health.OK):
        check_connection(conn)
        n += 1
    return n


@shared_task(name="sync.scan_einvoice_inbox", acks_late=True)
def scan_einvoice_inbox_task() -> dict:
    """The watched folder of the e-invoice inbox (EINVOICE_INBOX, default .var/einvoice-inbox)."""
    from sync.inbox import scan_folder

    return scan_folder()


@shared_task(name="sync.rematch_open_invoices", acks_late=True)
def rematch_open_invoices_task(entity_id: int | None = None) -> int:
    """Tolerances changed: invoices with open match exceptions are matched again (and posted if now clean)."""
    from workbench.models import ExceptionItem
    from workbench.services.validation import documents_validate

    items = ExceptionItem.objects.filter(code__in=["PRICE_VARIANCE", "QUANTITY_VARIANCE"], status__in=["open", "in_progress"])
    if entity_id is not None:
        items = items.filter(entity_id=entity_id)
    ids = list(items.values_list("document_id", flat=True).distinct())
    n = 0
    for i in range(0, len(ids), 200):
        with transaction.atomic():
            docs = list(Document.objects.filter(pk__in=ids[i:i + 200]))
            clean = documents_validate(documents=docs)
            push.enqueue_postings([d for d in clean if d.financial_status == Document.FinancialStatus.NOT_POSTED])
        n += len(docs)
    return n


@shared_task(name="sync.mapping_run", acks_late=True)
def mapping_run_task(run_id: int) -> str:
    """Apply a saved mapping rule version: map, re-validate, queue postings (safe to run twice)."""
    from workbench.models import MappingRun
    from workbench.services.mappings import mapping_run_execute

    run = MappingRun.objects.select_related("rule", "rule__entity").filter(pk=run_id).first()
    if run is None or run.status == MappingRun.Status.DONE:
        return "gone"
    return mapping_run_execute(run).status


@shared_task(name="sync.reconcile_master_data", acks_late=True)
def reconcile_master_data_task(connection: int | str | None = None, run_id: int | None = None) -> str:
    """Nightly: compare the ERP's master data with ours and record drift (sync/reconcile.py).

    Beat passes the connection's name (or id); the page's button passes the run it queued.
    """
    from sync.models import ReconciliationRun
    from sync.reconcile import run_reconciliation

    if run_id is not None:
        run = ReconciliationRun.objects.select_related("connection").filter(pk=run_id).first()
        if run is None or run.finished:
            return "gone"
    else:
        lookup = {"pk": connection} if isinstance(connection, int) else {"name": connection}
        conn = Connection.objects.filter(**lookup).first()
        if conn is None or not conn.enabled:
            return "no such enabled connection"
        run = ReconciliationRun.objects.create(connection=conn, triggered_by="schedule")
    return run_reconciliation(run).status
