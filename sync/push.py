"""Delivery of the outbox: claim a due write, call the vendor outside any transaction, record the answer.

The domain writes `OutboundWrite` rows (workbench/services/postings.py). A worker claims one due
row at a time by compare-and-set (an expired lease, a killed worker's, makes it due again), sends
it through its connection's connector with the row's idempotency key, and records the outcome in
a new transaction, handing what it means to the domain (`postings.write_succeeded`,
`write_refused`, `write_dead`). An uncertain outcome is retried with the same key; the ERP
connector looks the document number up before creating, so a retry never posts twice. A
connection that is down holds its writes (no attempts used up) until it answers again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from connectors.base import ConfigError, ConnectorError, MalformedPayload, Rejected, TransientError, WriteOp
from sync.backoff import delay_for
from sync.health import connector_for, error_text, record_failure, record_success
from workbench import jobs
from workbench.models import Connection, OutboundWrite
from workbench.services.postings import result_record, write_dead, write_refused, write_succeeded


def drain(limit: int = 50, rounds: int = 20) -> int:
    """Process the outbox until nothing is due (bounded); what a worker's drain task does. Writes
    queued meanwhile ask for no new drain: this loop picks them up."""
    total = 0
    with jobs.suppressed(jobs.PROCESS_OUTBOX):
        for _ in range(rounds):
            n = process_outbox(limit)
            total += n
            if n == 0:
                break
    return total


def claim_next() -> tuple[OutboundWrite, object] | None:
    """Claim one due write by compare-and-set; an expired lease (a killed worker) makes it due again.

    One at a time, so a lease starts when its write is really about to be sent. Returns the write
    and its lease, which every later update must still hold.
    """
    now = timezone.now()
    due = (
        OutboundWrite.objects.filter(
            Q(status=OutboundWrite.Status.PENDING, next_attempt_at__lte=now)
            | Q(status=OutboundWrite.Status.SENDING, lease_until__lt=now)
        )
        .exclude(connection__health=Connection.Health.DOWN)
        .exclude(connection__enabled=False)
        .order_by("id")
        .values_list("pk", "status")[:5]
    )
    lease = now + timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    for pk, status in due:
        q = OutboundWrite.objects.filter(pk=pk, status=status)
        changes = {"status": OutboundWrite.Status.SENDING, "lease_until": lease, "attempts": F("attempts") + 1}
        if status == OutboundWrite.Status.SENDING:
            q = q.filter(lease_until__lt=now)
            changes["uncertain"] = True  # a lease expired mid-send: the call may have gone through
        if q.update(**changes):
            return OutboundWrite.objects.select_related("connection", "document").get(pk=pk), lease
    return None


def _owned(w: OutboundWrite, lease):
    """The write, if this worker still holds it; a result arriving after the lease expired is dropped."""
    return OutboundWrite.objects.filter(pk=w.pk, status=OutboundWrite.Status.SENDING, lease_until=lease)


def process_outbox(limit: int = 50) -> int:
    """Send up to `limit` due writes; returns how many were attempted."""
    connectors = {}
    n = 0
    while n < limit:
        claimed = claim_next()
        if claimed is None:
            break
        w, lease = claimed
        n += 1
        conn = w.connection
        try:
            connector = connectors.get(conn.pk) or connectors.setdefault(conn.pk, connector_for(conn))
            result = connector.write(WriteOp(w.action, w.payload), idempotency_key=w.idempotency_key)
        except Rejected as exc:
            record_success(conn)
            _refused(w, lease, exc)
        except (TransientError, MalformedPayload) as exc:
            down = record_failure(conn, exc)
            _failed(w, lease, exc, held=down)
        except ConfigError as exc:
            record_failure(conn, exc)
            _failed(w, lease, exc, held=True)
        except ConnectorError as exc:
            _failed(w, lease, exc, held=False)
        except Exception as exc:  # noqa: BLE001 - e.g. a write the connector does not support: it dies, with an item
            logging.getLogger(__name__).exception("outbox write %s failed unexpectedly", w.idempotency_key)
            OutboundWrite.objects.filter(pk=w.pk).update(attempts=settings.SYNC_MAX_ATTEMPTS)
            _failed(w, lease, ConnectorError(f"unexpected error: {exc}"), held=False)
        else:
            record_success(conn)
            _succeeded(w, lease, result)
    return n


@transaction.atomic
def _succeeded(w: OutboundWrite, lease, result) -> None:
    if _owned(w, lease).update(
        status=OutboundWrite.Status.DONE, lease_until=None, last_error="", result=result_record(result)
    ):
        write_succeeded(w, result)


@transaction.atomic
def _refused(w: OutboundWrite, lease, exc: Rejected) -> None:
    if _owned(w, lease).update(
        status=OutboundWrite.Status.REJECTED,
        lease_until=None,
        last_error=f"{exc.code}: {exc.message}"[:2000],
        result={"code": exc.code, "message": exc.message},
    ):
        write_refused(w, code=exc.code, message=exc.message, field=exc.field or "", value=exc.value or "")


@transaction.atomic
def _failed(w: OutboundWrite, lease, exc: Exception, *, held: bool) -> None:
    w.refresh_from_db()
    uncertain = w.uncertain or bool(getattr(exc, "uncertain", False))
    message = error_text(exc)[:2000]
    if held:
        # The connection's outage is the incident; this write waits for recovery without using up attempts.
        _owned(w, lease).update(
            status=OutboundWrite.Status.PENDING,
            lease_until=None,
            attempts=F("attempts") - 1,
            uncertain=uncertain,
            last_error=message,
        )
        return
    if w.attempts >= settings.SYNC_MAX_ATTEMPTS:
        if _owned(w, lease).update(
            status=OutboundWrite.Status.DEAD, lease_until=None, uncertain=uncertain, last_error=message
        ):
            write_dead(w, attempts=w.attempts, error=message)
        return
    retry_after = getattr(exc, "retry_after", None)
    _owned(w, lease).update(
        status=OutboundWrite.Status.PENDING,
        lease_until=None,
        uncertain=uncertain,
        last_error=message,
        next_attempt_at=timezone.now() + timedelta(seconds=delay_for(w.attempts, retry_after)),
    )
