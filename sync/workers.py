"""Workers: how they are started, and how we tell a stalled one from an idle one.

Every worker runs Celery's *threads* pool. The prefork pool's children share semaphores with their
parent; a child killed while holding one leaves the new children blocked forever (celery's old
`SemLock` issue) while the parent still looks alive. Threads share no such lock with anyone, and
a killed worker process is restarted whole by its supervisor (or its orchestrator); its claimed
messages go back to the queue (sync/broker.py; Redis after its visibility timeout) and its leased
writes expire back to due (sync/push.py), so nothing is lost or posted twice.

Each worker writes `WorkerBeat.last_task_at` when it takes or finishes a task (at most every few
seconds). `worker_health()` calls the workers stalled when work waits (messages in the broker, or
outbox writes due for a while) and no worker has taken or finished a task for `WORKER_STALL_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from celery import current_app
from celery.signals import task_postrun, task_prerun, worker_ready
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from sync.broker import queue_size
from sync.models import WorkerBeat
from workbench.models import Connection, OutboundWrite

log = logging.getLogger(__name__)
BEAT_EVERY = 5.0  # seconds: at most one heartbeat write per worker process this often
_last_beat = {"at": 0.0}
_beat_lock = threading.Lock()


def worker_command(name: str, concurrency: int = 2, loglevel: str = "info") -> list[str]:
    """The one command line a worker runs with (demo, tests, README's deployment)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "sync",
        "worker",
        "--pool",
        "threads",
        "-c",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "-l",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def _beat(hostname: str, *, started: bool = False) -> None:
    now = timezone.now()
    try:
        if started:
            WorkerBeat.objects.update_or_create(name=hostname, defaults={"pid": os.getpid(), "started_at": now})
            return
        with _beat_lock:
            if time.monotonic() - _last_beat["at"] < BEAT_EVERY:
                return
            _last_beat["at"] = time.monotonic()
        WorkerBeat.objects.update_or_create(name=hostname, defaults={"pid": os.getpid(), "last_task_at": now})
    except Exception:  # noqa: BLE001 - a heartbeat must never fail the task it rides on
        log.warning("worker heartbeat not recorded", exc_info=True)


@worker_ready.connect
def _on_ready(sender=None, **kwargs):
    _beat(getattr(sender, "hostname", "") or "worker", started=True)


@task_prerun.connect
def _on_task_start(task=None, **kwargs):
    _beat(getattr(task.request, "hostname", None) or "worker")


@task_postrun.connect
def _on_task_end(task=None, **kwargs):
    _beat(getattr(task.request, "hostname", None) or "worker")


def broker_backlog() -> int | None:
    """Messages waiting for a worker in the default queue; None when the broker cannot be asked."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    if getattr(settings, "CELERY_BROKER_TRANSPORT", "") == "sync.broker:Transport":
        return queue_size(Path(options["folder"]))
    try:
        with current_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            return conn.default_channel.queue_declare(queue="celery", passive=True).message_count
    except Exception:  # noqa: BLE001 - a missing queue (nothing ever sent) or an unreachable broker
        return None


def worker_health(now=None) -> dict:
    """{"status": "ok" | "stalled", "backlog", "due_writes", "last_task_at", "workers"}."""
    now = now or timezone.now()
    stall = timedelta(seconds=settings.WORKER_STALL_SECONDS)
    backlog = broker_backlog()
    due = (
        OutboundWrite.objects.filter(status=OutboundWrite.Status.PENDING, next_attempt_at__lt=now - stall)
        .exclude(connection__health=Connection.Health.DOWN)
        .exclude(connection__enabled=False)
        .count()
    )
    beats = WorkerBeat.objects.aggregate(task=Max("last_task_at"), started=Max("started_at"))
    last = max((t for t in (beats["task"], beats["started"]) if t), default=None)
    waiting = bool(backlog) or due > 0
    stalled = waiting and (last is None or now - last > stall)
    return {
        "status": "stalled" if stalled else "ok",
        "backlog": backlog,
        "due_writes": due,
        "last_task_at": last.isoformat() if last else None,
        "workers": list(WorkerBeat.objects.values("name", "pid", "started_at", "last_task_at")),
    }
