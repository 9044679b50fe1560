"""The domain's one door to the worker: ask for background work by task name, once it has committed.

The domain never imports `sync` (STYLE.md, "Dependency direction"): a service records its intent
(a state change, an event, an outbox row) and names the work it wants done. The names are the
Celery task names `sync/tasks.py` registers (tests/sync/test_tasks.py checks every one of them).
A job asked for twice in one transaction with the same arguments is sent once.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from celery import current_app
from django.db import transaction

PROCESS_OUTBOX = "sync.process_outbox"
REVALIDATE_DOCUMENT = "sync.revalidate_document"
REPLAY_WRITE = "sync.replay_write"
CHECK_CONNECTION = "sync.check_connection"
REMATCH_OPEN_INVOICES = "sync.rematch_open_invoices"
MAPPING_RUN = "sync.mapping_run"
RECONCILE_MASTER_DATA = "sync.reconcile_master_data"
RUN_JOB = "sync.run_job"
PULL_STREAM_FULL = "sync.pull_stream_full"  # one master-data stream read in full, its cursor ignored
RUN_WORK_JOB = "sync.run_work_job"  # an export or bulk action a person asked for (services/work_jobs.py)
SEND_EMAIL_DIGEST = "sync.send_email_digest"  # beat, daily: each digest person's unmailed messages in one mail
EVALUATE_ALERTS = "sync.evaluate_alerts"  # every minute, and "Evaluate now" on the Alerts screen
WAKE_SNOOZED = "sync.wake_snoozed"  # beat, every minute: snoozes whose date came (services/snooze.py)
NAMES = (
    PROCESS_OUTBOX,
    REVALIDATE_DOCUMENT,
    REPLAY_WRITE,
    CHECK_CONNECTION,
    REMATCH_OPEN_INVOICES,
    MAPPING_RUN,
    RECONCILE_MASTER_DATA,
    RUN_JOB,
    PULL_STREAM_FULL,
    RUN_WORK_JOB,
    SEND_EMAIL_DIGEST,
    EVALUATE_ALERTS,
    WAKE_SNOOZED,
)

_local = threading.local()


class _Send:
    """One job, sent when its transaction commits; equal jobs in one transaction collapse to one."""

    def __init__(self, name: str, kwargs: dict):
        self.name, self.kwargs = name, kwargs

    def __eq__(self, other) -> bool:
        return isinstance(other, _Send) and (self.name, self.kwargs) == (other.name, other.kwargs)

    __hash__ = None

    def __call__(self) -> None:
        current_app.send_task(self.name, kwargs=self.kwargs)


def enqueue_on_commit(name: str, **kwargs) -> None:
    """Send job `name` with these keyword arguments after the current transaction commits (now, outside one)."""
    if name not in NAMES:
        raise ValueError(f"unknown job {name!r}")
    if name in getattr(_local, "suppressed", ()):
        return
    job = _Send(name, kwargs)
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        job()
    elif not any(entry[1] == job for entry in conn.run_on_commit):
        transaction.on_commit(job)


@contextmanager
def suppressed(name: str):
    """Inside this block (this thread), asking for `name` sends nothing: e.g. no outbox kicks while
    a worker drains the outbox, whose own loop picks new writes up."""
    previous = getattr(_local, "suppressed", frozenset())
    _local.suppressed = previous | {name}
    try:
        yield
    finally:
        _local.suppressed = previous
