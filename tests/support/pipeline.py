"""Helpers for driving the closed loop step by step in tests: run a job, drain the outbox."""

from __future__ import annotations

from collections import Counter

from sync import push
from sync.jobs import run_job
from sync.models import SyncRun
from sync.tasks import check_connections_task
from workbench.models import OutboundWrite


def run(conn, job) -> SyncRun:
    return run_job(SyncRun.objects.create(connection=conn, job=job, triggered_by="test"))


def drain_outbox(rounds: int = 200) -> None:
    """Process the outbox until nothing is due, fast-forwarding backoff waits."""
    for _ in range(rounds):
        check_connections_task()  # what beat does every 20 s: a falsely "down" connection comes back
        OutboundWrite.objects.filter(status="pending").update(next_attempt_at="2000-01-01T00:00:00Z")
        if push.process_outbox() == 0 and not OutboundWrite.objects.filter(status__in=["pending", "sending"]).exists():
            return
    raise AssertionError("outbox did not drain")


def full_sync(erp, expense) -> None:
    assert run(erp, "master_data").status == "succeeded"
    assert run(expense, "expense_pull").status == "succeeded"
    drain_outbox()
    assert run(erp, "posting_status").status == "succeeded"
    drain_outbox()


def erp_documents_per_number(erp_sandbox) -> Counter:
    sandbox = erp_sandbox[0]
    return Counter(
        doc.get("vendorInvoiceNumber")
        for doc in sandbox.store.all("purchaseInvoices")
        if doc.get("status") in ("Open", "Paid")
    )
