"""The sync page: each connection's runs, schedules, outbox and a Run-now button with live progress."""

import json

from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from sync.models import SyncRun
from sync.schedules import next_run, schedule_label, schedules_for
from sync.tasks import run_job_task
from workbench.models import Connection, OutboundWrite

JOBS_BY_ROLE = {
    Connection.Role.ERP: [SyncRun.Job.MASTER_DATA, SyncRun.Job.POSTING_STATUS],
    Connection.Role.EXPENSE: [SyncRun.Job.EXPENSE_PULL],
    Connection.Role.PROCUREMENT: [SyncRun.Job.PROCUREMENT_PULL],
    Connection.Role.APPROVALS: [SyncRun.Job.APPROVALS_PULL],
    Connection.Role.IDENTITY: [SyncRun.Job.IDENTITY_PULL],
}


def _run_counts(run):
    """Read, posted and failed for one run: postings it queued count when the ERP accepted them."""
    if run is None:
        return {}
    writes = OutboundWrite.objects.filter(run_id=run.pk).aggregate(
        posted=Count("id", filter=Q(status="done")),
        refused=Count("id", filter=Q(status__in=["rejected", "dead"])),
        queued=Count("id", filter=Q(status__in=["pending", "sending"])),
    )
    return {
        "read": run.records_read,
        "posted": run.records_posted + writes["posted"],
        "failed": run.records_failed + writes["refused"],
        "queued": writes["queued"],
    }


def _connection_rows():
    rows = []
    outbox = {
        r["connection_id"]: r
        for r in OutboundWrite.objects.values("connection_id").annotate(
            pending=Count("id", filter=Q(status__in=["pending", "sending"])),
            dead=Count("id", filter=Q(status="dead")),
            done=Count("id", filter=Q(status="done")),
            rejected=Count("id", filter=Q(status="rejected")),
        )
    }
    for conn in Connection.objects.all():
        jobs = []
        schedules = {json.loads(t.kwargs or "{}").get("job"): t for t in schedules_for(conn)}
        for job in JOBS_BY_ROLE.get(conn.role, []):
            last = SyncRun.objects.filter(connection=conn, job=job).first()
            task = schedules.get(job)
            jobs.append(
                {
                    "job": job,
                    "label": SyncRun.Job(job).label,
                    "last": last,
                    "schedule": task,
                    "counts": _run_counts(last),
                    "next_run": next_run(task),
                    "schedule_label": schedule_label(task) if task else "",
                }
            )
        rows.append({"conn": conn, "jobs": jobs, "outbox": outbox.get(conn.pk, {})})
    return rows


def sync_page(request):
    return render(request, "workbench/sync.html", {"rows": _connection_rows()})


@require_POST
def run_now(request, pk, job):
    conn = get_object_or_404(Connection, pk=pk)
    if job not in JOBS_BY_ROLE.get(conn.role, []):
        return render(
            request, "workbench/sync.html#run", {"run": None, "error": "That job does not exist for this connection."}
        )
    run = SyncRun.objects.create(connection=conn, job=job, triggered_by=request.user.get_username())
    run_job_task.delay(run.pk)
    response = render(request, "workbench/sync.html#run", {"run": run})
    return trigger_client_event(response, "toast", {"message": f"{SyncRun.Job(job).label} started", "level": "success"})


def run_progress(request, pk):
    run = get_object_or_404(SyncRun.objects.select_related("connection"), pk=pk)
    response = render(request, "workbench/sync.html#run", {"run": run})
    if run.finished:
        # Stop polling, and tell the page to redraw the connection tables with this run in them.
        return trigger_client_event(HttpResponseStopPolling(response.content), "runFinished", {"run": run.pk})
    return response
