"""A run always ends recorded, in words a person can read."""

import pytest

from sync import runs
from sync.jobs import run_job
from sync.models import SyncRun
from workbench.models import Connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def broken_erp():
    return Connection.objects.create(
        name="ERP",
        kind="business_central",
        role="erp",
        config={"base_url": "ftp://erp.example", "client_id": "x", "client_secret": "y"},
    )


def test_a_failed_run_says_why_without_python_class_names(broken_erp):
    run = run_job(SyncRun.objects.create(connection=broken_erp, job="master_data", triggered_by="test"))
    assert run.status == "failed" and run.finished_at is not None
    assert "settings or credentials" in run.message and "base_url" in run.message
    assert "Error" not in run.message.split(":")[0]  # "ConfigError: ..." is for the log, not the screen
    broken_erp.refresh_from_db()
    assert broken_erp.health == "down" and "ConfigError" not in broken_erp.last_error


def test_a_run_ends_failed_even_when_recording_the_failure_fails(broken_erp, monkeypatch):
    def boom(connection, exc):
        raise RuntimeError("the database hiccuped")

    monkeypatch.setattr(runs, "record_failure", boom)
    run = run_job(SyncRun.objects.create(connection=broken_erp, job="master_data", triggered_by="test"))
    assert run.status == "failed" and run.finished_at is not None  # never left "running" for the page to poll


def test_a_run_interrupted_by_anything_ends_failed(broken_erp):
    run = SyncRun.objects.create(connection=broken_erp, job="master_data", triggered_by="test")

    def interrupted():
        raise KeyboardInterrupt  # a warm shutdown, a time limit: not an Exception

    with pytest.raises(KeyboardInterrupt):
        runs.run_recorded(run, job="master_data", body=interrupted)
    run.refresh_from_db()
    assert run.status == "failed" and "stopped before it finished" in run.message
