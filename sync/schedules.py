"""Beat schedules in django-celery-beat's tables, edited on the Schedules screen (or in the admin).

`ensure_schedules()` creates the default entries that are missing and never touches existing ones:
an admin's edit (interval or cron, enabled) survives every restart. `schedule_update()` is the one
way the app changes an entry; `next_run()` says when beat will send it next.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from celery.schedules import crontab
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_celery_beat import validators
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, crontab_schedule_celery_timezone

from workbench import jobs
from workbench.errors import WorkbenchError
from workbench.models import AuditRecord, Connection
from workbench.services.audit import audit_record

logger = logging.getLogger(__name__)


def _interval(seconds: int) -> IntervalSchedule:
    schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
    return schedule


def default_entries() -> list[dict]:
    entries = [
        {"name": "Outbox: send pending writes", "task": "sync.process_outbox", "every": 10, "kwargs": {}},
        {
            "name": "Connections: probe the ones that are down",
            "task": "sync.check_connections",
            "every": 20,
            "kwargs": {},
        },
        {"name": "E-invoice inbox: watched folder", "task": "sync.scan_einvoice_inbox", "every": 30, "kwargs": {}},
        {"name": "Audit trail: seal new records into the chain", "task": "sync.audit_seal", "every": 60, "kwargs": {}},
        {
            "name": "Inbox: daily e-mail digest",
            "task": jobs.SEND_EMAIL_DIGEST,
            "cron": f"0 {settings.DIGEST_HOUR} * * *",  # in CELERY_TIMEZONE; admins move it on the Schedules screen
            "kwargs": {},
        },
        {"name": "Alerts: evaluate rules", "task": "sync.evaluate_alerts", "every": 60, "kwargs": {}},
        {
            "name": "Snoozed items: wake the ones whose time came",
            "task": "sync.wake_snoozed",
            "every": 60,
            "kwargs": {},
        },
    ]
    for conn in Connection.objects.all():
        if conn.role == Connection.Role.ERP:
            entries.append(
                {
                    "name": f"{conn.name}: master data",
                    "task": "sync.scheduled_job",
                    "every": 300,
                    "kwargs": {"connection": conn.name, "job": "master_data"},
                }
            )
            entries.append(
                {
                    "name": f"{conn.name}: posting status and payments",
                    "task": "sync.scheduled_job",
                    "every": 60,
                    "kwargs": {"connection": conn.name, "job": "posting_status"},
                }
            )
            entries.append(
                {
                    "name": f"{conn.name}: master-data reconciliation",
                    "task": "sync.reconcile_master_data",
                    "every": 86400,
                    "kwargs": {"connection": conn.name},
                }
            )
        elif conn.role == Connection.Role.EXPENSE:
            entries.append(
                {
                    "name": f"{conn.name}: expense reports",
                    "task": "sync.scheduled_job",
                    "every": 60,
                    "kwargs": {"connection": conn.name, "job": "expense_pull"},
                }
            )
        elif conn.role == Connection.Role.PROCUREMENT:
            entries.append(
                {
                    "name": f"{conn.name}: requisitions, receipts and invoices",
                    "task": "sync.scheduled_job",
                    "every": 60,
                    "kwargs": {"connection": conn.name, "job": "procurement_pull"},
                }
            )
        elif conn.role == Connection.Role.APPROVALS:
            entries.append(
                {
                    "name": f"{conn.name}: approval decisions",
                    "task": "sync.scheduled_job",
                    "every": 30,
                    "kwargs": {"connection": conn.name, "job": "approvals_pull"},
                }
            )
        elif conn.role == Connection.Role.IDENTITY:
            entries.append(
                {
                    "name": f"{conn.name}: employees",
                    "task": "sync.scheduled_job",
                    "every": 300,
                    "kwargs": {"connection": conn.name, "job": "identity_pull"},
                }
            )
    return entries


def ensure_schedules() -> int:
    created = 0
    for e in default_entries():
        when = {"crontab": _crontab(parse_cron(e["cron"]))} if "cron" in e else {"interval": _interval(e["every"])}
        _, was_created = PeriodicTask.objects.get_or_create(
            name=e["name"], defaults={"task": e["task"], **when, "kwargs": json.dumps(e["kwargs"])}
        )
        created += was_created
    return created


def schedules_for(connection: Connection) -> list[PeriodicTask]:
    return [
        t
        for t in PeriodicTask.objects.select_related("interval", "crontab").filter(task="sync.scheduled_job")
        if json.loads(t.kwargs or "{}").get("connection") == connection.name
    ]


# --- editing from the app ------------------------------------------------------------------------------

MIN_INTERVAL = 10  # seconds: below this, beat's own tick (and the SQLite broker) cannot keep up
MAX_INTERVAL = 7 * 24 * 3600
HISTORY_KEEP = 20
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
_CRON_LABELS = {
    "minute": "minute",
    "hour": "hour",
    "day_of_month": "day of month",
    "month_of_year": "month",
    "day_of_week": "day of week",
}
_CRON_VALIDATORS = {
    "minute": validators.minute_validator,
    "hour": validators.hour_validator,
    "day_of_month": validators.day_of_month_validator,
    "month_of_year": validators.month_of_year_validator,
    "day_of_week": validators.day_of_week_validator,
}
# One history line per change, newest first: "2026-11-20 10:05 UTC admin: every 1 minute → cron */5 * * * *; on → off".
SCHEDULE_SOURCE = "schedule"


class ScheduleError(WorkbenchError):
    """The schedule an admin typed cannot be used; the message says why."""


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def every_label(seconds: int) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            return f"every {_plural(seconds // size, unit)}"
    return f"every {_plural(seconds, 'second')}"


def interval_seconds(interval: IntervalSchedule) -> int:
    return int(timedelta(**{interval.period: interval.every}).total_seconds())


def cron_expression(cron: CrontabSchedule) -> str:
    return " ".join(str(getattr(cron, f)) for f in CRON_FIELDS)


def schedule_label(task: PeriodicTask) -> str:
    """What the schedule is, in the words the screens use: "every 5 minutes" or "cron 0 3 * * 1-5"."""
    if task.interval_id:
        return every_label(interval_seconds(task.interval))
    if task.crontab_id:
        tz = str(task.crontab.timezone)
        return f"cron {cron_expression(task.crontab)}" + ("" if tz == "UTC" else f" ({tz})")
    if task.solar_id:
        return f"solar {task.solar}"
    if task.clocked_id:
        return f"once at {task.clocked}"
    return "no schedule"


def schedule_history(task: PeriodicTask) -> list[str]:
    """Who changed this schedule, newest first, from the audit trail (which nobody can edit)."""
    rows = AuditRecord.objects.filter(source=SCHEDULE_SOURCE, row_id=str(task.pk)).order_by("-id")[:HISTORY_KEEP]
    return [f"{r.at:%Y-%m-%d %H:%M} UTC {r.actor_name}: {r.data.get('change', '')}" for r in rows]


def parse_cron(expression: str) -> dict:
    """Five cron fields, checked by django-celery-beat's validators and by celery's own crontab."""
    fields = (expression or "").split()
    if len(fields) != 5:
        raise ScheduleError(
            f"A cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            f'e.g. "*/15 * * * *"; "{expression.strip()}" has {len(fields)}.'
        )
    spec = dict(zip(CRON_FIELDS, fields, strict=True))
    for field, value in spec.items():
        try:
            _CRON_VALIDATORS[field](value)
        except ValidationError as exc:
            why = "; ".join(m.strip('"') for m in exc.messages)
            raise ScheduleError(f'Cron {_CRON_LABELS[field]} "{value}" is not valid: {why}.') from exc
    try:
        # celery knows things the field validators do not, e.g. that 31 February never comes.
        crontab(**spec).remaining_estimate(timezone.now())
    except (ValueError, RuntimeError) as exc:
        raise ScheduleError(f'Cron "{" ".join(fields)}" cannot be used: {exc}') from exc
    return spec


def _validate(every_seconds: int | None, cron: str | None) -> tuple[int | None, dict | None]:
    cron = (cron or "").strip() or None
    if (every_seconds is None) == (cron is None):
        raise ScheduleError("Give either an interval or a cron expression (exactly one).")
    if cron is not None:
        return None, parse_cron(cron)
    if isinstance(every_seconds, bool) or not isinstance(every_seconds, int):
        raise ScheduleError("The interval must be a whole number of seconds.")
    if not MIN_INTERVAL <= every_seconds <= MAX_INTERVAL:
        raise ScheduleError(
            f"The interval must be between {MIN_INTERVAL} seconds and 7 days, not {_plural(every_seconds, 'second')}."
        )
    return every_seconds, None


def _crontab(spec: dict) -> CrontabSchedule:
    tz = crontab_schedule_celery_timezone()
    found = CrontabSchedule.objects.filter(**spec, timezone=tz).first()  # the admin may hold duplicates
    return found or CrontabSchedule.objects.create(**spec, timezone=tz)


def _interval_row(seconds: int) -> IntervalSchedule:
    found = IntervalSchedule.objects.filter(every=seconds, period=IntervalSchedule.SECONDS).first()
    return found or IntervalSchedule.objects.create(every=seconds, period=IntervalSchedule.SECONDS)


@transaction.atomic
def schedule_update(
    *, task: PeriodicTask, every_seconds: int | None, cron: str | None, enabled: bool, actor
) -> PeriodicTask:
    """Point a beat entry at an interval or a cron schedule, switch it on or off, and note who did it.

    The change is kept in the audit trail with who made it (`schedule_history` reads it back). No
    change, no record.
    """
    every_seconds, spec = _validate(every_seconds, cron)
    task = PeriodicTask.objects.select_related("interval", "crontab", "solar", "clocked").get(pk=task.pk)
    before, was_enabled = schedule_label(task), task.enabled
    if spec is not None:
        task.crontab, task.interval = _crontab(spec), None
    else:
        task.interval, task.crontab = _interval_row(every_seconds), None
    task.solar = task.clocked = None  # django-celery-beat runs a task on exactly one schedule
    task.enabled = bool(enabled)
    after = schedule_label(task)
    changes = []
    if after != before:
        changes.append(f"{before} → {after}")
    if task.enabled != was_enabled:
        changes.append("off → on" if task.enabled else "on → off")
    if not changes:
        return task
    task.save()  # also tells a running beat (PeriodicTasks.changed) to reload its schedule
    audit_record(
        source=SCHEDULE_SOURCE,
        row_id=task.pk,
        action="schedule_changed",
        data={"task": task.name, "change": "; ".join(changes)},
        actor=actor,
    )
    logger.info("schedule changed", extra={"task": task.name, "change": changes})
    return task


def next_run(task: PeriodicTask | None) -> datetime | None:
    """When beat will next send the task, or None when it will not (off, one-off already run, expired).

    Mirrors beat's DatabaseScheduler: a task that never ran counts from its last change (`date_changed`), and
    a past-due one runs on beat's next tick, i.e. now.
    """
    if task is None or not task.enabled or (task.one_off and task.total_run_count):
        return None
    if task.interval_id:
        schedule = task.interval.schedule
    elif task.crontab_id:
        schedule = task.crontab.schedule
    else:
        return None
    now = timezone.now()
    schedule.nowfun = lambda: now  # one clock for the estimate and for `now + estimate` (a fresh object per access)
    if task.start_time and not task.last_run_at:
        at = max(task.start_time, now)
    else:
        at = max(now + schedule.remaining_estimate(task.last_run_at or task.date_changed or now), now)
    if task.expires and at >= task.expires:
        return None
    return at
