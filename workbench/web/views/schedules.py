"""The schedules screen: every beat entry (sync jobs per connection, housekeeping), its interval or cron,
on/off, last and next run, edited in place by admins."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_celery_beat.models import PeriodicTask
from django_htmx.http import trigger_client_event

from sync.models import SyncRun
from sync.schedules import (
    ScheduleError,
    cron_expression,
    interval_seconds,
    next_run,
    schedule_history,
    schedule_label,
    schedule_update,
)
from workbench.models import Connection

UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
HOUSEKEEPING = "Housekeeping"


class ScheduleForm(forms.Form):
    kind = forms.ChoiceField(choices=[("interval", "Every"), ("cron", "Cron")])
    every = forms.IntegerField(required=False, min_value=1, max_value=10**9)
    unit = forms.ChoiceField(choices=[(u, u) for u in UNITS], required=False)
    cron = forms.CharField(required=False, max_length=200)
    enabled = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if data.get("kind") == "interval" and not data.get("every"):
            raise forms.ValidationError("Enter how often it runs, e.g. every 5 minutes.")
        if data.get("kind") == "cron" and not (data.get("cron") or "").strip():
            raise forms.ValidationError('Enter a cron expression, e.g. "*/15 * * * *".')
        return data

    def schedule(self) -> dict:
        d = self.cleaned_data
        if d["kind"] == "cron":
            return {"every_seconds": None, "cron": d["cron"], "enabled": d["enabled"]}
        return {"every_seconds": d["every"] * UNITS[d.get("unit") or "seconds"], "cron": None, "enabled": d["enabled"]}


def _values(task: PeriodicTask) -> dict:
    """What the row's edit form shows for a saved task."""
    values = {"kind": "interval", "every": "", "unit": "minutes", "cron": "", "enabled": task.enabled}
    if task.interval_id:
        seconds = interval_seconds(task.interval)
        unit = next(u for u in ("days", "hours", "minutes", "seconds") if seconds % UNITS[u] == 0)
        values.update(every=seconds // UNITS[unit], unit=unit)
    elif task.crontab_id:
        values.update(kind="cron", cron=cron_expression(task.crontab))
    return values


def _kwargs(task: PeriodicTask) -> dict:
    try:
        kwargs = json.loads(task.kwargs or "{}")
    except ValueError:
        return {}
    return kwargs if isinstance(kwargs, dict) else {}


# Tasks that are not a sync job but belong to a connection: named for people, not by their dotted path.
TASK_LABELS = {"sync.reconcile_master_data": "Master-data reconciliation"}


def _row(task: PeriodicTask, *, values: dict | None = None, error: str = "") -> dict:
    kwargs = _kwargs(task)
    job, conn = kwargs.get("job"), kwargs.get("connection")
    last_sync = None
    if task.task == "sync.scheduled_job" and conn and job:
        last_sync = SyncRun.objects.filter(connection__name=conn, job=job).first()
    job_label = SyncRun.Job(job).label if job in SyncRun.Job.values else TASK_LABELS.get(task.task, job or task.task)
    return {
        "task": task,
        "group": conn or HOUSEKEEPING,
        "job": job_label,
        "label": schedule_label(task),
        "next_run": next_run(task),
        "last_sync": last_sync,
        "history": schedule_history(task),
        "values": values or _values(task),
        "error": error,
    }


def _tasks():
    return PeriodicTask.objects.select_related("interval", "crontab", "solar", "clocked").order_by("name")


def _groups() -> list[dict]:
    """One group per connection (in the Connection order), then the ones beat runs for the whole app."""
    rows = [_row(t) for t in _tasks()]
    names = list(Connection.objects.values_list("name", flat=True))
    order = {name: i for i, name in enumerate(names)}
    groups: dict[str, dict] = {}
    for row in rows:
        g = groups.setdefault(
            row["group"],
            {"name": row["group"], "rows": [], "known": row["group"] in order or row["group"] == HOUSEKEEPING},
        )
        g["rows"].append(row)
    return sorted(
        groups.values(), key=lambda g: (g["name"] == HOUSEKEEPING, order.get(g["name"], len(order)), g["name"])
    )


def schedules_page(request):
    return render(request, "workbench/schedules.html", {"groups": _groups()})


def _answer(request, row: dict, message: str, level: str):
    if not request.htmx:  # the form also works without JavaScript
        (messages.success if level == "success" else messages.error)(request, message)
        return redirect("sync:schedules")
    response = render(request, "workbench/schedules.html#row", {"row": row})
    return trigger_client_event(response, "toast", {"message": message, "level": level})


@require_POST
def schedule_save(request, pk):
    task = get_object_or_404(_tasks(), pk=pk)
    form = ScheduleForm(request.POST)
    posted = {
        "kind": request.POST.get("kind", "interval"),
        "every": request.POST.get("every", ""),
        "unit": request.POST.get("unit", "minutes"),
        "cron": request.POST.get("cron", ""),
        "enabled": bool(request.POST.get("enabled")),
    }
    if not form.is_valid():
        error = " ".join(msg for msgs in form.errors.values() for msg in msgs)
        return _answer(request, _row(task, values=posted, error=error), error, "error")
    before = (schedule_label(task), task.enabled)
    try:
        task = schedule_update(task=task, actor=request.user, **form.schedule())
    except ScheduleError as exc:
        return _answer(request, _row(task, values=posted, error=str(exc)), str(exc), "error")
    row = _row(task)
    if (row["label"], task.enabled) == before:
        return _answer(request, row, f"{task.name}: nothing changed.", "success")
    when = (
        f"next run {row['next_run']:%Y-%m-%d %H:%M:%S} UTC" if row["next_run"] else "it will not run until switched on"
    )
    return _answer(request, row, f"{task.name}: {row['label']}, {'on' if task.enabled else 'off'}; {when}.", "success")
