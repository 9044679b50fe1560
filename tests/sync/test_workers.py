"""/healthz tells a stalled worker from an idle one."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sync import workers
from sync.models import WorkerBeat
from workbench.models import Connection, OutboundWrite

pytestmark = pytest.mark.django_db


@pytest.fixture
def erp():
    return Connection.objects.create(name="ERP", kind="business_central", role="erp", health="ok")


def test_an_idle_system_is_healthy_even_with_no_worker_seen(client, monkeypatch):
    monkeypatch.setattr(workers, "broker_backlog", lambda: 0)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["workers"]["status"] == "ok"


def test_work_waiting_with_no_task_taken_for_the_stall_time_is_a_503(client, erp, monkeypatch, settings):
    settings.WORKER_STALL_SECONDS = 60
    monkeypatch.setattr(workers, "broker_backlog", lambda: 0)
    now = timezone.now()
    WorkerBeat.objects.create(
        name="worker-1@host", pid=42, started_at=now - timedelta(hours=1), last_task_at=now - timedelta(minutes=5)
    )
    OutboundWrite.objects.create(
        connection=erp,
        action="post_expense_report",
        idempotency_key="k1",
        payload={},
        next_attempt_at=now - timedelta(minutes=3),
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (
        body["status"] == "degraded" and body["workers"]["status"] == "stalled" and body["workers"]["due_writes"] == 1
    )
    # A worker that took a task a moment ago is busy, not stalled.
    WorkerBeat.objects.filter(name="worker-1@host").update(last_task_at=now)
    assert client.get("/healthz").status_code == 200


def test_messages_waiting_in_the_broker_with_no_worker_count_as_work(client, monkeypatch, settings):
    settings.WORKER_STALL_SECONDS = 60
    monkeypatch.setattr(workers, "broker_backlog", lambda: 7)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["workers"]["backlog"] == 7


def test_writes_held_for_a_connection_that_is_down_are_not_a_stall(client, erp, monkeypatch, settings):
    settings.WORKER_STALL_SECONDS = 60
    monkeypatch.setattr(workers, "broker_backlog", lambda: 0)
    Connection.objects.filter(pk=erp.pk).update(health="down")
    OutboundWrite.objects.create(
        connection=erp,
        action="post_expense_report",
        idempotency_key="k2",
        payload={},
        next_attempt_at=timezone.now() - timedelta(minutes=30),
    )
    assert client.get("/healthz").status_code == 200
