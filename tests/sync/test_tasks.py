"""The domain asks for work by name (workbench/jobs.py); those names are sync's registered tasks."""

import pytest
from django.db import transaction

from sync.celery import app
from workbench import jobs


def test_every_job_the_domain_can_ask_for_is_a_registered_task():
    app.loader.import_default_modules()
    missing = [name for name in jobs.NAMES if name not in app.tasks]
    assert not missing, f"workbench.jobs names tasks sync does not register: {missing}"


def test_an_unknown_job_is_refused_at_once():
    with pytest.raises(ValueError, match="unknown job"):
        jobs.enqueue_on_commit("sync.no_such_thing")


@pytest.mark.django_db(transaction=True)
def test_a_job_asked_for_twice_in_one_transaction_is_sent_once_after_commit(monkeypatch):
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, kwargs=None, **kw: sent.append((name, kwargs)))
    with transaction.atomic():
        jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)
        jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)
        jobs.enqueue_on_commit(jobs.REVALIDATE_DOCUMENT, document_id=1, actor_id=None, repost=True)
        assert sent == []  # nothing leaves before the commit
    assert sent == [
        (jobs.PROCESS_OUTBOX, {}),
        (jobs.REVALIDATE_DOCUMENT, {"document_id": 1, "actor_id": None, "repost": True}),
    ]
    with transaction.atomic():
        jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)
        transaction.set_rollback(True)
    assert len(sent) == 2  # a rolled-back transaction asks for nothing


def test_no_outbox_kick_while_a_worker_drains_the_outbox(monkeypatch):
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, kwargs=None, **kw: sent.append(name))
    with jobs.suppressed(jobs.PROCESS_OUTBOX):
        jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)
    jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)
    assert sent == [jobs.PROCESS_OUTBOX]
