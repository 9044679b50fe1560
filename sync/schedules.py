"""Beat schedules in django-celery-beat's tables (editable in the admin).

`ensure_schedules()` creates the default entries that are missing and never touches existing ones:
an admin's edit (interval, enabled) survives every restart.
"""

from __future__ import annotations

import json

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from workbench.models import Connection


def _interval(seconds: int) -> IntervalSchedule:
    schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
    return schedule


def default_entries() -> list[dict]:
    entries = [
        {"name": "Outbox: send pending writes", "task": "sync.process_outbox", "every": 10, "kwargs": {}},
        {"name": "Connections: probe the ones that are down", "task": "sync.check_connections", "every": 20, "kwargs": {}},
        {"name": "E-invoice inbox: watched folder", "task": "sync.scan_einvoice_inbox", "every": 30, "kwargs": {}},
    ]
    for conn in Connection.objects.all():
        if conn.role == Connection.Role.ERP:
            entries.append({"name": f"{conn.name}: master data", "task": "sync.scheduled_job", "every": 300,
                            "kwargs": {"connection": conn.name, "job": "master_data"}})
            entries.append({"name": f"{conn.name}: posting status and payments", "task": "sync.scheduled_job", "every": 60,
                            "kwargs": {"connection": conn.name, "job": "posting_status"}})
        elif conn.role == Connection.Role.EXPENSE:
            entries.append({"name": f"{conn.name}: expense reports", "task": "sync.scheduled_job", "every": 60,
                            "kwargs": {"connection": conn.name, "job": "expense_pull"}})
        elif conn.role == Connection.Role.PROCUREMENT:
            entries.append({"name": f"{conn.name}: requisitions, receipts and invoices", "task": "sync.scheduled_job",
                            "every": 60, "kwargs": {"connection": conn.name, "job": "procurement_pull"}})
        elif conn.role == Connection.Role.APPROVALS:
            entries.append({"name": f"{conn.name}: approval decisions", "task": "sync.scheduled_job", "every": 30,
                            "kwargs": {"connection": conn.name, "job": "approvals_pull"}})
    return entries


def ensure_schedules() -> int:
    created = 0
    for e in default_entries():
        _, was_created = PeriodicTask.objects.get_or_create(
            name=e["name"], defaults={"task": e["task"], "interval": _interval(e["every"]), "kwargs": json.dumps(e["kwargs"])})
        created += was_created
    return created


def schedules_for(connection: Connection) -> list[PeriodicTask]:
    return [t for t in PeriodicTask.objects.select_related("interval", "crontab").filter(task="sync.scheduled_job")
            if json.loads(t.kwargs or "{}").get("connection") == connection.name]
