"""A Celery app on the embedded broker (sync/broker.py) for the broker soak: the product's transport
and worker settings, with one task that records what it was given.

Every process that publishes logs each task id it published (after_task_publish) to
``sent-<pid>.log``; every task that completes logs its id to ``done-<pid>.log``. Comparing the two
says what was lost and what was read twice. One task in ten publishes a follow-up, so workers
are producers too. The folder comes from SOAK_DIR.
"""

import hashlib
import os
import time
from pathlib import Path

from celery import Celery
from celery.signals import after_task_publish

SOAK_DIR = Path(os.environ.get("SOAK_DIR", "/tmp/workbench-soak"))

app = Celery("soak", broker="filesystem://localhost/", set_as_current=False)
app.conf.update(
    broker_transport="sync.broker:Transport",
    broker_transport_options={"folder": str(SOAK_DIR / "broker"), "polling_interval": 0.05},
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_enable_remote_control=False,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    beat_schedule={"tick": {"task": "soak.record", "schedule": 0.25, "args": ("beat",)}},
    beat_max_loop_interval=0.25,
)

_logs: dict[str, object] = {}


def _log(kind: str, line: str) -> None:
    key = f"{kind}-{os.getpid()}"
    f = _logs.get(key)
    if f is None:
        f = _logs[key] = open(SOAK_DIR / f"{key}.log", "a", buffering=1)  # noqa: SIM115 - one per process
    f.write(line + "\n")


@after_task_publish.connect
def _published(sender=None, headers=None, **kwargs):
    if sender == "soak.record":
        _log("sent", headers["id"])


@app.task(name="soak.record", bind=True)
def record(self, origin: str) -> None:
    task_id = self.request.id
    # Deterministic: one message in ten makes the worker publish a follow-up.
    if hashlib.sha1(task_id.encode()).digest()[0] < 26 and origin != "worker":
        record.delay("worker")
    _log("done", f"{task_id} {origin} {time.time():.6f}")
