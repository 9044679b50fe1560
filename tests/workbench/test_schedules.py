"""The schedules screen: admins change beat entries in place (interval or cron, on or off) and see when they run."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from sync.models import SyncRun
from sync.schedules import ensure_schedules, next_run, schedule_history, schedule_update
from workbench.models import Connection

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 10, 7, 30, tzinfo=UTC)
ERP = "Business Central (ERP)"


@pytest.fixture
def schedules():
    Connection.objects.create(name=ERP, kind="business_central", role="erp", config={})
    Connection.objects.create(name="Concur Expense", kind="concur", role="expense", config={})
    ensure_schedules()
    return {t.name: t for t in PeriodicTask.objects.all()}


@pytest.fixture
def task(schedules):
    return schedules[f"{ERP}: posting status and payments"]  # every 60 s by default


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def save(client, task, **data):
    body = {"kind": "interval", "every": "1", "unit": "minutes", "cron": "", "enabled": "on", **data}
    body = {k: v for k, v in body.items() if v is not None}
    return client.post(reverse("sync:schedule_save", args=[task.pk]), body, HTTP_HX_REQUEST="true")


def toast(response) -> dict:
    return json.loads(response["HX-Trigger"])["toast"]


def test_it_lists_every_beat_entry_grouped_by_connection(admin_client, schedules):
    SyncRun.objects.create(connection=Connection.objects.get(name=ERP), job="posting_status", status="failed")
    page = admin_client.get(reverse("sync:schedules")).content.decode()
    assert (
        page.index(f'data-group="{ERP}"')
        < page.index('data-group="Concur Expense"')
        < page.index('data-group="Housekeeping"')
    )
    for name in schedules:
        assert name in page
    assert "every 5 minutes" in page and "every 10 seconds" in page  # master data; the outbox
    assert "ERP posting status pull" in page and "sync.process_outbox" in page
    assert '<span class="status run-failed">failed</span>' in page  # the job's last SyncRun


def test_admin_changes_an_interval_and_the_change_is_recorded(admin_client, task, frozen):
    response = save(admin_client, task, every="2", unit="minutes")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page and f'data-task="{task.pk}"' in page and "every 2 minutes" in page
    assert toast(response)["level"] == "success" and "every 2 minutes, on" in toast(response)["message"]
    task.refresh_from_db()
    assert (task.interval.every, task.interval.period, task.crontab) == (120, IntervalSchedule.SECONDS, None)
    assert schedule_history(task) == ["2026-11-20 10:07 UTC admin: every 1 minute → every 2 minutes"]


def test_admin_switches_a_job_to_cron(admin_client, task, frozen):
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=NOW - timedelta(minutes=1))
    response = save(admin_client, task, kind="cron", cron=" */15  * * * * ")
    assert toast(response)["level"] == "success"
    task.refresh_from_db()
    assert task.interval is None and task.crontab is not None  # beat needs exactly one schedule
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("*/15", "*", "UTC")
    assert "cron */15 * * * *" in response.content.decode()
    assert "2026-11-20 10:15:00" in response.content.decode()  # next run, from the cron
    assert next_run(task) == datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
    assert "every 1 minute → cron */15 * * * *" in schedule_history(task)[0]
    # the same cron on another task reuses the schedule row
    other = PeriodicTask.objects.get(name=f"{ERP}: master data")
    save(admin_client, other, kind="cron", cron="*/15 * * * *")
    assert CrontabSchedule.objects.filter(minute="*/15").count() == 1  # (the daily digest has its own)


def test_admin_switches_a_job_off_and_on(admin_client, task, frozen):
    response = save(admin_client, task, enabled=None)
    task.refresh_from_db()
    assert task.enabled is False and next_run(task) is None
    assert f'data-testid="next-{task.pk}">—<' in response.content.decode()
    assert "will not run until switched on" in toast(response)["message"]
    save(admin_client, task)
    task.refresh_from_db()
    assert task.enabled is True
    assert schedule_history(task) == [
        "2026-11-20 10:07 UTC admin: off → on",
        "2026-11-20 10:07 UTC admin: on → off",
    ]


def test_saving_without_a_change_records_nothing(admin_client, task):
    response = save(admin_client, task)
    assert "nothing changed" in toast(response)["message"]
    task.refresh_from_db()
    assert schedule_history(task) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "cron", "cron": "61 * * * *"}, 'Cron minute "61" is not valid'),
        ({"kind": "cron", "cron": "* * * *"}, "A cron expression has 5 fields"),
        ({"kind": "cron", "cron": "0 0 31 2 *"}, "never occurs"),
        ({"kind": "cron", "cron": ""}, "Enter a cron expression"),
        ({"every": "5", "unit": "seconds"}, "between 10 seconds and 7 days, not 5 seconds"),
        ({"every": "8", "unit": "days"}, "between 10 seconds and 7 days"),
        ({"every": "", "unit": "minutes"}, "Enter how often it runs"),
        ({"every": "soon"}, "Enter a whole number"),
    ],
)
def test_a_bad_schedule_is_refused_with_a_message(admin_client, task, data, message):
    response = save(admin_client, task, **data)
    page = response.content.decode()
    assert response.status_code == 200
    assert message in html.unescape(page) and message in toast(response)["message"]
    assert toast(response)["level"] == "error" and 'role="alert"' in page
    if data.get("cron"):
        assert f'value="{data["cron"]}"' in page  # what the admin typed stays in the form
    task.refresh_from_db()
    assert (task.interval.every, task.crontab, task.enabled, schedule_history(task)) == (60, None, True, [])


def test_an_analyst_gets_a_plain_403(analyst_client, task):
    for response in [analyst_client.get(reverse("sync:schedules")), save(analyst_client, task, every="5")]:
        assert response.status_code == 403 and "Not part of your role" in response.content.decode()
    task.refresh_from_db()
    assert task.interval.every == 60
    assert reverse("sync:schedules") not in analyst_client.get(reverse("sync:page")).content.decode()


def test_ensure_schedules_leaves_an_edit_alone(admin_client, task):
    save(admin_client, task, kind="cron", cron="0 6 * * 1-5", enabled=None)
    assert ensure_schedules() == 0
    task.refresh_from_db()
    assert (task.crontab.hour, task.crontab.day_of_week, task.interval, task.enabled) == ("6", "1-5", None, False)


def test_without_htmx_the_form_posts_and_redirects(admin_client, task):
    response = admin_client.post(
        reverse("sync:schedule_save", args=[task.pk]),
        {"kind": "interval", "every": "90", "unit": "seconds", "enabled": "on"},
        follow=True,
    )
    assert response.redirect_chain == [(reverse("sync:schedules"), 302)]
    assert "every 90 seconds, on" in response.content.decode()


def test_the_sync_page_links_here_and_shows_cron_schedules(admin_client, task, frozen):
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=NOW - timedelta(minutes=1))
    schedule_update(task=task, every_seconds=None, cron="0 6 * * *", enabled=True, actor=None)
    page = admin_client.get(reverse("sync:page")).content.decode()
    assert f'href="{reverse("sync:schedules")}">Schedules' in page
    assert "cron 0 6 * * *" in page and "2026-11-21 06:00:00" in page
    assert "system: every 1 minute → cron 0 6 * * *" in schedule_history(task)[0]


# --- next_run ------------------------------------------------------------------------------------------------


def test_next_run_for_an_interval_counts_from_the_last_run(task, frozen):
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=NOW - timedelta(seconds=20))
    assert next_run(PeriodicTask.objects.get(pk=task.pk)) == NOW + timedelta(seconds=40)


def test_next_run_for_a_task_that_never_ran_counts_from_its_last_change(task, frozen):
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=None, date_changed=NOW - timedelta(seconds=45))
    assert next_run(PeriodicTask.objects.get(pk=task.pk)) == NOW + timedelta(seconds=15)


def test_next_run_of_an_overdue_task_is_now(task, frozen):
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=NOW - timedelta(hours=3))
    assert next_run(PeriodicTask.objects.get(pk=task.pk)) == NOW


def test_next_run_for_a_crontab(task, frozen):
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=NOW - timedelta(minutes=1))
    task = schedule_update(task=task, every_seconds=None, cron="30 9 * * 1-5", enabled=True, actor=None)
    assert next_run(task) == datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # 20 Nov 2026 is a Friday; next is Monday


def test_next_run_of_a_disabled_task_is_none(task):
    task = schedule_update(task=task, every_seconds=60, cron=None, enabled=False, actor=None)
    assert next_run(task) is None and next_run(None) is None
