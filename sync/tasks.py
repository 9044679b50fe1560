"""Celery tasks: thin adapters that fetch by id and call one sync or domain function.

The names are what the domain asks for (`workbench/jobs.py`) and what beat's entries name. All are
idempotent (safe to run twice) and acknowledged late, so a killed worker's task is redelivered and
simply runs again.
"""

from __future__ import annotations

from celery import shared_task

from sync import push
from sync.alert_chat import alerts_run
from sync.health import check_connection
from sync.jobs import run_job
from sync.jobs.einvoice_inbox import scan_folder
from sync.jobs.master_data import pull_stream_full
from sync.models import ReconciliationRun, SyncRun
from sync.reconcile import run_reconciliation
from workbench import jobs
from workbench.models import Connection, MappingRun, OutboundWrite
from workbench.services.audit import audit_seal_all
from workbench.services.email_digest import notifications_digest_send
from workbench.services.mapping_runs import mapping_run_execute
from workbench.services.postings import write_replay
from workbench.services.revalidation import document_revalidate, invoices_rematch_open
from workbench.services.snooze import exception_items_wake_due
from workbench.services.work_jobs import work_job_run
from workbench.streams import ORDER as MASTER_DATA_STREAMS


@shared_task(name=jobs.RUN_JOB, acks_late=True)
def run_job_task(run_id: int) -> str:
    run = SyncRun.objects.select_related("connection").filter(pk=run_id).first()
    if run is None or run.finished:
        return "gone"
    return run_job(run).status


@shared_task(name="sync.scheduled_job", acks_late=True)
def scheduled_job_task(connection: str, job: str) -> str:
    """What beat calls: one run of `job` on the connection named `connection`."""
    conn = Connection.objects.filter(name=connection).first()
    if conn is None or not conn.enabled:
        return "no such enabled connection"
    run = SyncRun.objects.create(connection=conn, job=job, triggered_by="schedule")
    return run_job(run).status


@shared_task(name=jobs.PULL_STREAM_FULL, acks_late=True)
def pull_stream_full_task(connection_id: int, stream: str) -> str:
    """A drift item's "Pull again": one master-data stream read in full (sync/jobs/master_data.py)."""
    if stream not in MASTER_DATA_STREAMS:  # a task message is input too: no run for a name that is no stream
        return "skipped"
    conn = Connection.objects.filter(pk=connection_id).first()
    if conn is None:
        return "gone"
    run = SyncRun.objects.create(connection=conn, job=SyncRun.Job.MASTER_DATA, triggered_by=f"pull again: {stream}")
    return pull_stream_full(run, stream).status


@shared_task(name=jobs.PROCESS_OUTBOX, acks_late=True)
def process_outbox_task() -> int:
    return push.drain()


@shared_task(name=jobs.REVALIDATE_DOCUMENT, acks_late=True)
def revalidate_document_task(document_id: int, actor_id: int | None = None, repost: bool = False) -> str:
    return document_revalidate(document_id=document_id, actor_id=actor_id, repost=repost)


@shared_task(name=jobs.REPLAY_WRITE, acks_late=True)
def replay_write_task(write_id: int, actor_id: int | None = None) -> str:
    write = OutboundWrite.objects.filter(pk=write_id).first()
    if write is None:
        return "gone"
    write_replay(write)
    return "queued"


@shared_task(name=jobs.CHECK_CONNECTION, acks_late=True)
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
    return scan_folder()


@shared_task(name=jobs.REMATCH_OPEN_INVOICES, acks_late=True)
def rematch_open_invoices_task(entity_id: int | None = None) -> int:
    """Tolerances changed: invoices with open match exceptions are matched again (and posted if now clean)."""
    return invoices_rematch_open(entity_id=entity_id)


@shared_task(name=jobs.RUN_WORK_JOB, acks_late=True)
def run_work_job_task(job_id: int) -> str:
    """An export or a bulk action a person asked for (safe to run twice: a finished job is left alone)."""
    return work_job_run(job_id)


@shared_task(name=jobs.MAPPING_RUN, acks_late=True)
def mapping_run_task(run_id: int) -> str:
    """Apply a saved mapping rule version: map, re-validate, queue postings (safe to run twice)."""
    run = MappingRun.objects.select_related("rule", "rule__entity").filter(pk=run_id).first()
    if run is None or run.status == MappingRun.Status.DONE:
        return "gone"
    return mapping_run_execute(run).status


@shared_task(name=jobs.RECONCILE_MASTER_DATA, acks_late=True)
def reconcile_master_data_task(connection: int | str | None = None, run_id: int | None = None) -> str:
    """Nightly: compare the ERP's master data with ours and record drift (sync/reconcile.py).

    Beat passes the connection's name (or id); the page's button passes the run it queued.
    """
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


@shared_task(name="sync.audit_seal", acks_late=True)
def audit_seal_task() -> int:
    """Every minute: chain the audit records written since (services/audit.py)."""
    return audit_seal_all()


@shared_task(name=jobs.SEND_EMAIL_DIGEST, acks_late=True)
def send_email_digest_task() -> int:
    """Daily at DIGEST_HOUR: mail each digest person their unmailed messages of the last day (never twice)."""
    return notifications_digest_send()


@shared_task(name=jobs.EVALUATE_ALERTS, acks_late=True)
def evaluate_alerts_task() -> dict:
    """Every minute: fire and resolve alert rules, then post their chat messages (sync/alert_chat.py)."""
    return alerts_run()


@shared_task(name=jobs.WAKE_SNOOZED, acks_late=True)
def wake_snoozed_task() -> int:
    """Every minute: wake the items whose snooze date came, or whose approver is back (services/snooze.py)."""
    return exception_items_wake_due()
