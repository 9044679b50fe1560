"""Run what a person asked for in the background, with progress they can watch.

`work_job_start` records the request and asks the worker for it by id; the worker calls
`work_job_run`, which claims the row and hands it to the handler registered for its kind. A handler
is `handler(job, progress) -> dict`: it calls `progress(done, total)` as it goes and returns what
the person should see at the end. It must be safe to run again: a worker killed mid-job gets the
same job back (tasks are acked late) and the row is claimed again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from workbench import jobs
from workbench.models import WorkJob
from workbench.services import bulk
from workbench.services.exports import export_job

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
Handler = Callable[[WorkJob, Progress], dict]

# kind -> handler; the modules that own a kind add their line here.
HANDLERS: dict[str, Handler] = {
    bulk.KIND: bulk.bulk_handle,
    "export": export_job,  # a big CSV or XLSX export (services/exports.py)
}


@transaction.atomic
def work_job_start(*, kind: str, title: str, params: dict, actor, total: int = 0) -> WorkJob:
    if kind not in HANDLERS:
        raise ValueError(f"unknown kind of work {kind!r}")
    job = WorkJob.objects.create(kind=kind, title=title[:300], params=params, requested_by=actor, total=total)
    jobs.enqueue_on_commit(jobs.RUN_WORK_JOB, job_id=job.pk)
    return job


def work_job_run(job_id: int) -> str:
    """Claim and run one job; a finished job is left alone, so running twice does nothing twice."""
    claimed = WorkJob.objects.filter(Q(status=WorkJob.Status.QUEUED) | Q(status=WorkJob.Status.RUNNING), pk=job_id)
    if not claimed.update(status=WorkJob.Status.RUNNING, started_at=timezone.now()):
        return "gone"
    job = WorkJob.objects.select_related("requested_by").get(pk=job_id)

    def progress(done: int, total: int) -> None:
        WorkJob.objects.filter(pk=job_id).update(done=done, total=total)
        job.done, job.total = done, total

    try:
        result = HANDLERS[job.kind](job, progress)
    except Exception as exc:
        log.exception("work job %s failed", job_id)
        WorkJob.objects.filter(pk=job_id).update(
            status=WorkJob.Status.FAILED, finished_at=timezone.now(), message=f"It failed: {exc}"[:2000]
        )
        return WorkJob.Status.FAILED
    WorkJob.objects.filter(pk=job_id).update(
        status=WorkJob.Status.DONE,
        finished_at=timezone.now(),
        result=result or {},
        file_name=job.file_name,
        file_path=job.file_path,
        content_type=job.content_type,
        message=(result or {}).get("message", "")[:2000],
    )
    return WorkJob.Status.DONE
