"""The closed loop on real parts: sandboxes as processes, Celery workers as processes, Redis (in CI)."""

from collections import Counter

import pytest

from sync.models import SyncRun, WorkerBeat
from tests.conftest import wait_until
from workbench.models import Connection, Document, ExceptionItem, OutboundWrite

EXPENSES = Document.objects.filter(kind="expense_report")  # the P2P documents of the same sandboxes are not counted

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def finished(job: str) -> SyncRun | None:
    return SyncRun.objects.filter(job=job, finished_at__isnull=False).order_by("-id").first()


def start_sync(erp: Connection, expense: Connection) -> None:
    from sync.tasks import scheduled_job_task

    before = SyncRun.objects.filter(job="master_data", status="succeeded").count()
    scheduled_job_task.delay(erp.name, "master_data")
    wait_until(
        lambda: SyncRun.objects.filter(job="master_data", status="succeeded").count() > before,
        90,
        message="master data",
    )
    scheduled_job_task.delay(expense.name, "expense_pull")


def settled() -> bool:
    return (
        SyncRun.objects.filter(job="expense_pull", finished_at__isnull=False).exists()
        and not SyncRun.objects.filter(finished_at__isnull=True).exists()
        and not OutboundWrite.objects.filter(status__in=["pending", "sending"]).exists()
    )


def erp_postings(sandboxes) -> Counter:
    return Counter(sandboxes["erp"].get("/sandbox/stats")["documents"])


def test_a_real_worker_posts_writes_back_and_queues_the_rest(sandboxes, connections, worker_factory):
    erp, expense = connections
    worker_factory("w1")
    start_sync(erp, expense)
    wait_until(settled, 180, message="the sync to settle")
    assert finished("expense_pull").status == "succeeded"
    posted = EXPENSES.filter(financial_status="posted")
    assert posted.count() > 20
    for doc in EXPENSES.exclude(financial_status="posted"):
        assert doc.exceptions.filter(status="open").exists(), doc
    assert set(ExceptionItem.objects.values_list("code", flat=True)) >= {
        "MISSING_COST_CENTER",
        "UNKNOWN_COST_CENTER",
        "CLOSED_PERIOD",
        "INVALID_TAX_CODE",
        "INACTIVE_EMPLOYEE",
        "ERP_REJECTED",
        "MALFORMED_RECORD",
    }
    # the expense platform shows the ERP's document number (the closed loop)
    # the worker says it is alive and taking work (what /healthz reads)
    assert WorkerBeat.objects.filter(name__startswith="w1@", last_task_at__isnull=False).exists()
    doc = posted.first()
    wait_until(
        lambda: sandboxes["expense"].get(f"/sandbox/reports/{doc.source_id}").get("erpDocumentNumber"),
        60,
        message="the write-back",
    )
    assert sandboxes["expense"].get(f"/sandbox/reports/{doc.source_id}")["erpDocumentNumber"] == doc.erp_document_number


def test_killing_the_worker_mid_posting_and_syncing_three_times_posts_each_report_once(
    sandboxes, connections, worker_factory
):
    erp, expense = connections
    w1 = worker_factory("w1", SYNC_LEASE_SECONDS=3)
    from sync.tasks import process_outbox_task, scheduled_job_task

    before = 0
    scheduled_job_task.delay(erp.name, "master_data")
    wait_until(
        lambda: SyncRun.objects.filter(job="master_data", status="succeeded").exists(), 90, message="master data"
    )
    sandboxes["erp"].faults(delay_ms=150)  # slow postings, so the kill lands mid-way
    scheduled_job_task.delay(expense.name, "expense_pull")

    def mid_posting():
        posts = OutboundWrite.objects.filter(action="post_expense_report")
        pulled = SyncRun.objects.filter(job="expense_pull", finished_at__isnull=False).exists()
        return pulled and posts.filter(status="done").count() >= 3 and posts.filter(status="sending").exists()

    wait_until(mid_posting, 120, interval=0.1, message="postings in flight")
    w1.kill()  # SIGKILL while at least one posting is in flight
    in_flight = OutboundWrite.objects.filter(action="post_expense_report", status="sending").count()
    before = OutboundWrite.objects.filter(action="post_expense_report", status="done").count()
    assert in_flight > 0, "the worker finished before it was killed; nothing was tested"
    sandboxes["erp"].faults(delay_ms=0)
    worker_factory("w2", SYNC_LEASE_SECONDS=3)
    for _ in range(3):  # sync three times more: nothing may be posted twice
        scheduled_job_task.delay(expense.name, "expense_pull")
        process_outbox_task.delay()

    def all_done():
        process_outbox_task.delay()  # what beat does every 10 s
        return settled()

    wait_until(all_done, 180, interval=3, message="the outbox to drain after the kill")
    per_number = erp_postings(sandboxes)
    assert max(per_number.values()) == 1, [n for n, c in per_number.items() if c > 1]
    posted = EXPENSES.filter(financial_status="posted")
    assert posted.count() > before
    # each report posted here is in the ERP: its posting's document number is there, once
    numbers = {
        w.document_id: w.payload["document_number"]
        for w in OutboundWrite.objects.filter(action="post_expense_report", status="done")
    }
    missing = [d.number for d in posted if per_number.get(numbers.get(d.pk)) != 1]
    assert not missing, missing
    # nothing lost: every report is posted or held by an exception a person can act on
    for doc in EXPENSES.exclude(financial_status="posted"):
        assert doc.exceptions.filter(status__in=["open", "in_progress", "waiting"]).exists(), doc
