"""What every pull and reconciliation shares: leases, cursors, progress, retries, quarantine, and the
recorded run around a job.

Per page, in one transaction: upsert, run the rules, raise items, queue postings, save the cursor.
The cursor never moves ahead of committed data. Transient failures are retried in place with
backoff (honouring Retry-After), restarting from the last committed cursor.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from connectors.base import ConnectorError, Page, RecordError, TransientError
from sync.backoff import delay_for
from sync.health import error_text, record_failure, record_success
from sync.models import SyncCursor, SyncRun
from workbench.models import Connection
from workbench.money import parse_amount
from workbench.services.exception_items import exception_item_raise

log = logging.getLogger(__name__)

MAX_PAGE_ATTEMPTS = 6
MAX_SLEEP = 30.0  # never park a worker longer than this on one Retry-After


class Skipped(Exception):
    """The job has nothing to do now (waiting for master data, connection disabled...)."""


def progress(run: SyncRun, **counts) -> None:
    SyncRun.objects.filter(pk=run.pk).update(**{k: F(k) + v for k, v in counts.items()})


def cursor_of(connection: Connection, stream: str) -> SyncCursor:
    cursor, _ = SyncCursor.objects.get_or_create(connection=connection, stream=stream)
    return cursor


def cursor_save(cursor: SyncCursor, page: Page) -> None:
    """Move the cursor with the page (inside the page's transaction)."""
    if page.next_cursor is not None:
        cursor.value = page.next_cursor
        cursor.save(update_fields=["value", "updated_at"])


def read_with_retries(
    connection: Connection, read: Callable[[], Iterator[Page]], on_page: Callable[[Page], None]
) -> None:
    """Feed pages to on_page; on a transient error, back off and read again from the saved cursor."""
    attempt = 0
    while True:
        try:
            for page in read():
                on_page(page)
                attempt = 0
            record_success(connection)
            return
        except TransientError as exc:
            attempt += 1
            down = record_failure(connection, exc)
            if attempt >= MAX_PAGE_ATTEMPTS or down:
                raise
            wait = min(MAX_SLEEP, delay_for(attempt, exc.retry_after))
            log.info("%s: %s; retry %d in %.1fs", connection.name, exc, attempt, wait)
            time.sleep(wait)


def queue_pages(connector, stream: str, seen: set[str]) -> Iterator[Page]:
    """Pages of a queue stream (read, commit, acknowledge). The queue shrinks as we acknowledge, so
    always take its first page again (following page links would skip documents). Stop when it is
    empty or only repeats what we have (or records without ids, which cannot be acknowledged)."""
    for _ in range(100_000):
        first = next(iter(connector.read(stream, None)), None)
        if first is None or not (first.records or first.errors):
            return
        ids = ({r.get("external_id") for r in first.records} | {e.external_id for e in first.errors}) - {None, ""}
        if ids <= seen:
            return
        yield first


def split_records(
    page: Page, check: Callable[[dict], str], summary: Callable[[dict], dict] | None = None
) -> tuple[list[dict], list[RecordError]]:
    """The page's records the ledger can hold, and the ones it cannot (with why): one bad record never fails a page."""
    good, bad = [], list(page.errors)
    for rec in page.records:
        problem = check(rec)
        if problem:
            bad.append(
                RecordError(
                    str(rec.get("external_id") or ""), problem, repr(rec)[:4000], summary(rec) if summary else {}
                )
            )
        else:
            good.append(rec)
    return good, bad


def record_summary(rec: dict) -> dict:
    """What a quarantined document's item can still say about it (its number and amount)."""
    return {
        "number": str(rec.get("number") or ""),
        "amount": str(rec.get("total") or ""),
        "currency": str(rec.get("currency") or ""),
    }


def quarantine(connection: Connection, err: RecordError) -> None:
    """A record that cannot be read becomes one technical item that says what could still be read."""
    info = getattr(err, "summary", {}) or {}
    what = " ".join(x for x in (info.get("number"), info.get("name")) if x)
    who = f" from {info['party']}" if info.get("party") else ""
    try:
        amount = parse_amount(info["amount"]) if info.get("amount") else None
    except ValueError:
        amount = None
    currency = info.get("currency", "") if len(info.get("currency", "")) == 3 else ""
    ref = err.external_id or hashlib.sha1(err.raw.encode()).hexdigest()[:16]
    exception_item_raise(
        code="MALFORMED_RECORD",
        fp=f"MALFORMED_RECORD:{connection.kind}:{ref}",
        message=f"{connection.name} sent {('report ' + what) if what else 'a record'}{who} that cannot be read: {err.message}",
        detail={"source": connection.kind, "external_id": err.external_id, "raw": err.raw[:4000], "summary": info},
        amount=amount,
        currency=currency.upper(),
        search_extra=" ".join(info.values()),
    )


# --- leases and the recorded run -------------------------------------------------------------------------


def claim(connection: Connection, job: str, seconds: int = 900) -> bool:
    """One run of a job per connection at a time: compare-and-set on the job's lease."""
    lease = cursor_of(connection, f"lease:{job}")
    now = timezone.now()
    return bool(
        SyncCursor.objects.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=lease.pk).update(
            lease_until=now + timedelta(seconds=seconds)
        )
    )


def renew(connection: Connection, job: str, seconds: int) -> None:
    SyncCursor.objects.filter(connection=connection, stream=f"lease:{job}").update(
        lease_until=timezone.now() + timedelta(seconds=seconds)
    )


def release(connection: Connection, job: str) -> None:
    SyncCursor.objects.filter(connection=connection, stream=f"lease:{job}").update(lease_until=None)


FAILED_RUN = "The worker running this was lost; a later run carried on."


def run_recorded(run, *, job: str, body: Callable[[], str], lease_seconds: int = 900, reset: dict | None = None):
    """Run `body` as one recorded run (a SyncRun or a ReconciliationRun) and return the run, refreshed.

    One run per (connection, job) at a time (a lease); a run still marked running when we take the
    lease lost its worker and is marked failed. Vendor trouble never raises out of here: `Skipped`
    ends the run skipped, a connector error or anything else ends it failed, with the reason a
    person can read. `body` returns the run's closing message ("" for none); `reset` is written
    when the run starts (a redelivered task starts its run again from scratch).
    """
    model, connection = type(run), run.connection
    if not claim(connection, job, lease_seconds):
        model.objects.filter(pk=run.pk).update(
            status=model.Status.SKIPPED, finished_at=timezone.now(), message="Another run of this job is in progress."
        )
        run.refresh_from_db()
        return run
    now = timezone.now()
    model.objects.filter(connection=connection, status=model.Status.RUNNING).exclude(pk=run.pk).filter(
        **({"job": job} if model is SyncRun else {})
    ).update(status=model.Status.FAILED, finished_at=now, message=FAILED_RUN)
    model.objects.filter(pk=run.pk).update(status=model.Status.RUNNING, started_at=now, **(reset or {}))
    # Whatever happens below, the run ends recorded: a run left "running" would be polled forever.
    status, message = model.Status.FAILED, "The run stopped before it finished (the worker log has the details)."
    try:
        if not connection.enabled:
            raise Skipped("The connection is disabled.")
        message = body() or ""
        status = model.Status.SUCCEEDED
    except Skipped as exc:
        status, message = model.Status.SKIPPED, str(exc)
    except ConnectorError as exc:
        status, message = model.Status.FAILED, error_text(exc)
        try:
            record_failure(connection, exc)
        except Exception:  # noqa: BLE001 - the connection's health is second to recording the run
            log.exception("recording the failure of %s failed", connection.name)
    except Exception as exc:  # noqa: BLE001 - the run must end recorded, whatever happened
        log.exception("%s %s failed", model.__name__, run.pk)
        status, message = (
            model.Status.FAILED,
            f"Unexpected error in the workbench (the worker log has the details): {exc}",
        )
    finally:
        release(connection, job)
        model.objects.filter(pk=run.pk).update(status=status, finished_at=timezone.now(), message=message[:2000])
    run.refresh_from_db()
    return run
