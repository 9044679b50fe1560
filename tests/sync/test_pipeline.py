"""The closed loop, driven step by step against both sandboxes (in-thread servers, real HTTP).

Tasks are called as functions here; tests/e2e runs the same flow on real workers and processes.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.test import override_settings

from sync import push
from sync.models import SyncRun
from tests.support.pipeline import drain_outbox, erp_documents_per_number, full_sync, run
from workbench.models import Document, ErpPosting, ExceptionItem, OutboundWrite

EXPENSES = Document.objects.filter(kind="expense_report")  # the P2P documents of the same sandboxes are not counted

pytestmark = pytest.mark.django_db


def expected_codes(world) -> Counter:
    """What the planted problems must turn into (per line, or per report where the rule is per report)."""
    want = Counter()
    for r in world.reports:
        if r.malformed:
            want["MALFORMED_RECORD"] += 1
            continue
        problems = {ln.problem for ln in r.lines if ln.problem}
        if "inactive_employee" in problems:
            want["INACTIVE_EMPLOYEE"] += 1
        for ln in r.lines:
            code = {
                "missing_cost_center": "MISSING_COST_CENTER",
                "unknown_cost_center": "UNKNOWN_COST_CENTER",
                "closed_period": "CLOSED_PERIOD",
                "invalid_tax_code": "INVALID_TAX_CODE",
                "blocked_gl_account": "BLOCKED_GL_ACCOUNT",
                "heading_gl_account": "BLOCKED_GL_ACCOUNT",
            }.get(ln.problem)
            if code:
                want[code] += 1
        if problems == {"blocked_cost_center"}:
            want["ERP_REJECTED"] += 1  # only the ERP knows LEGACY is blocked
    return want


def test_first_sync_posts_valid_reports_writes_back_and_queues_the_rest(conns, world, erp_sandbox, expense_sandbox):
    erp, expense = conns
    full_sync(erp, expense)

    raised = Counter(ExceptionItem.objects.filter(status="open").values_list("code", flat=True))
    assert raised == expected_codes(world)

    clean = [r for r in world.reports if not r.malformed and not any(ln.problem for ln in r.lines)]
    posted = EXPENSES.filter(financial_status__in=["posted", "paid"])
    assert posted.count() == len(clean) > 0
    assert all(d.erp_document_number for d in posted)
    # every document is either posted or held by an active exception: nothing is lost
    for doc in EXPENSES.exclude(financial_status__in=["posted", "paid"]):
        assert doc.exceptions.filter(status__in=["open", "in_progress", "waiting"]).exists(), doc
    assert EXPENSES.count() == len(world.reports) - 2  # the two malformed are quarantined

    # the closed loop: the expense platform shows the ERP's document number
    concur = expense_sandbox[0]
    doc = posted.first()
    shown = concur.stats_payload()["docs"][doc.source_id]
    assert shown["erpDocumentNumber"] == doc.erp_document_number
    # and the ERP's refusals were sent back too
    rejected = EXPENSES.filter(financial_status="rejected").first()
    assert concur.stats_payload()["docs"][rejected.source_id]["status"] in ("FAILED", "ERROR", "failed", "error")

    # trace from source approval to ERP posting, all with the document's correlation id
    actions = list(doc.events.values_list("action", flat=True))
    assert actions[0] == "approved" and "posted" in actions and "confirmation_received" in actions
    assert set(doc.events.values_list("correlation_id", flat=True)) == {doc.correlation_id}


def test_syncing_three_times_and_redelivery_post_each_report_once(conns, erp_sandbox, expense_sandbox):
    erp, expense = conns
    for _ in range(3):
        full_sync(erp, expense)
    # the expense platform delivers every report again
    concur = expense_sandbox[0]
    ids = list(EXPENSES.values_list("source_id", flat=True))
    import json
    import urllib.request

    req = urllib.request.Request(
        f"{expense_sandbox[1]}/sandbox/redeliver",
        data=json.dumps({"doc_ids": ids}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10).read()
    full_sync(erp, expense)
    per_number = erp_documents_per_number(erp_sandbox)
    assert per_number and max(per_number.values()) == 1
    posted = EXPENSES.filter(financial_status__in=["posted", "paid"])
    assert len(per_number) == posted.count()
    assert concur is not None
    # What the ERP now holds is remembered once per ERP document, with the amount and period booked.
    postings = ErpPosting.objects.filter(kind="expense_report")
    assert postings.count() == posted.count() == len({p.erp_id for p in postings})
    for p in postings.select_related("document"):
        assert (p.amount, p.currency) == (p.document.total, p.document.currency)
        assert p.erp_number == p.document.erp_document_number and p.period == p.posting_date.isoformat()[:7]


@override_settings(SYNC_MAX_ATTEMPTS=50, SYNC_BACKOFF_BASE=0.05)
def test_500s_and_429s_end_with_every_report_posted_or_queued(conns, erp_sandbox, expense_sandbox, world):
    erp, expense = conns
    erp_sandbox[0].faults.update({"error_rate": 0.1, "throttle_rate": 0.1, "retry_after": 0})
    expense_sandbox[0].faults.update({"error_rate": 0.1, "throttle_rate": 0.1, "retry_after": 0})
    for _ in range(6):  # a run may fail outright; the schedule simply runs it again
        run(erp, "master_data")
        if erp.master_data_synced_at or erp.__class__.objects.get(pk=erp.pk).master_data_synced_at:
            break
    for _ in range(10):
        run(expense, "expense_pull")
        drain_outbox()
    erp_sandbox[0].faults.update({"error_rate": 0, "throttle_rate": 0})
    expense_sandbox[0].faults.update({"error_rate": 0, "throttle_rate": 0})
    run(expense, "expense_pull")
    drain_outbox()
    assert EXPENSES.count() == len(world.reports) - 2
    for doc in EXPENSES.all():
        assert doc.financial_status in ("posted", "paid") or doc.exceptions.filter(status="open").exists(), doc
    assert max(erp_documents_per_number(erp_sandbox).values()) == 1
    assert erp_sandbox[0].stats.get("faults.500", 0) + erp_sandbox[0].stats.get("faults.429", 0) > 0


def test_an_outage_is_one_incident_and_held_postings_replay_on_recovery(conns, erp_sandbox, expense_sandbox):
    erp, expense = conns
    run(erp, "master_data")
    erp_sandbox[0].faults.update({"down": True})
    run(expense, "expense_pull")
    for _ in range(5):
        OutboundWrite.objects.filter(status="pending").update(next_attempt_at="2000-01-01T00:00:00Z")
        push.process_outbox()
    incidents = ExceptionItem.objects.filter(code="CONNECTOR_UNAVAILABLE", status="open")
    assert incidents.count() == 1 and incidents.get().kind == "technical"
    assert not ExceptionItem.objects.filter(code__in=["POSTING_FAILED", "ERP_REJECTED"]).exists()
    held = OutboundWrite.objects.filter(status="pending").count()
    assert held > 10 and erp.__class__.objects.get(pk=erp.pk).health == "down"

    erp_sandbox[0].faults.update({"down": False})
    from sync.health import check_connection

    assert check_connection(erp.__class__.objects.get(pk=erp.pk))
    drain_outbox()
    assert ExceptionItem.objects.get(code="CONNECTOR_UNAVAILABLE").status == "resolved"
    assert EXPENSES.filter(financial_status__in=["posted", "rejected"]).count() >= held


def test_an_uncertain_posting_is_looked_up_not_sent_twice(conns, erp_sandbox, expense_sandbox):
    erp, expense = conns
    run(erp, "master_data")
    run(expense, "expense_pull")
    # one clean report's posting: the ERP does the work but the answer times out
    first = next(
        w
        for w in OutboundWrite.objects.filter(action="post_expense_report").order_by("id")
        if not w.document.lines.filter(cost_center="LEGACY").exists()
    )
    OutboundWrite.objects.exclude(pk=first.pk).update(next_attempt_at="2100-01-01T00:00:00Z")
    erp_sandbox[0].faults.update({"timeout_rate": 1.0, "hang_seconds": 3, "timeout_methods": ["POST"]})
    assert push.process_outbox(limit=1) == 1
    first.refresh_from_db()
    assert first.status == "pending" and first.uncertain
    reached = [
        d
        for d in erp_sandbox[0].store.all("purchaseInvoices")
        if d.get("vendorInvoiceNumber") == first.payload["document_number"]
    ]
    assert len(reached) == 1  # it did reach the ERP (as a draft: the answer to its creation was lost)
    erp_sandbox[0].faults.update({"timeout_rate": 0})
    drain_outbox()
    first.refresh_from_db()
    assert first.status == "done"  # the resend found the first attempt's document...
    assert max(erp_documents_per_number(erp_sandbox).values()) == 1  # ...and made no second one


def test_an_analyst_fix_reposts_and_closes_the_loop(conns, erp_sandbox, expense_sandbox, analyst):
    from sync.tasks import revalidate_document_task
    from workbench.services.documents import document_line_correct

    erp, expense = conns
    full_sync(erp, expense)
    item = ExceptionItem.objects.filter(code="UNKNOWN_COST_CENTER", status="open").first()
    doc = item.document
    for other in doc.exceptions.filter(status="open").exclude(pk=item.pk):
        pytest.skip(f"report also has {other.code}")
    document_line_correct(line=item.line, field_name="cost_center", value="SALES", reason="typo", actor=analyst)
    item.refresh_from_db()
    assert item.status == "waiting"
    assert revalidate_document_task(doc.pk, actor_id=analyst.pk, repost=True) == "clean"
    drain_outbox()
    item.refresh_from_db()
    doc.refresh_from_db()
    assert item.status == "resolved"
    assert doc.financial_status == "posted" and doc.erp_document_number
    assert expense_sandbox[0].stats_payload()["docs"][doc.source_id]["erpDocumentNumber"] == doc.erp_document_number
    assert doc.events.filter(action="corrected", actor=analyst).exists()


def test_an_erp_refusal_fixed_by_the_analyst_is_posted_and_the_erp_words_are_learnt(
    conns, erp_sandbox, expense_sandbox, analyst
):
    from sync.tasks import revalidate_document_task
    from workbench.models import CostCenter
    from workbench.services.documents import document_line_correct
    from workbench.services.item_actions import exception_item_retry

    erp, expense = conns
    full_sync(erp, expense)
    item = ExceptionItem.objects.filter(code="ERP_REJECTED", status="open").first()
    doc = item.document
    assert "LEGACY is blocked" in item.message
    # the ERP's refusal taught us LEGACY is blocked: it is no longer offered, and new reports are caught early
    assert not CostCenter.objects.get(entity=doc.entity, code="LEGACY").active
    # a bare retry stops at validation now, and says what to fix
    exception_item_retry(item=item, actor=analyst)
    assert revalidate_document_task(doc.pk, actor_id=analyst.pk, repost=True) == "blocked"
    item.refresh_from_db()
    assert item.status == "open" and "UNKNOWN_COST_CENTER" in item.events.last().reason
    assert "blocked in the ERP" in doc.exceptions.get(code="UNKNOWN_COST_CENTER", status="open").message
    # fixing the line is re-posted and closes the item
    line = doc.lines.get(cost_center="LEGACY")
    document_line_correct(line=line, field_name="cost_center", value="SALES", reason="LEGACY closed", actor=analyst)
    revalidate_document_task(doc.pk, actor_id=analyst.pk, repost=True)
    drain_outbox()
    item.refresh_from_db()
    doc.refresh_from_db()
    assert doc.financial_status == "posted" and item.status == "resolved"
    assert expense_sandbox[0].stats_payload()["docs"][doc.source_id]["erpDocumentNumber"] == doc.erp_document_number
    assert max(erp_documents_per_number(erp_sandbox).values()) == 1


def test_sending_back_tells_the_source_why(conns, erp_sandbox, expense_sandbox, analyst):
    from workbench.services.item_actions import exception_item_send_back

    erp, expense = conns
    full_sync(erp, expense)
    inactive = ExceptionItem.objects.filter(code="INACTIVE_EMPLOYEE", status="open").first()
    exception_item_send_back(item=inactive, reason="Employee left in October; reassign to the manager", actor=analyst)
    malformed = ExceptionItem.objects.filter(code="MALFORMED_RECORD").first()
    assert malformed.amount_at_risk > 0 and malformed.detail["summary"]["number"] in malformed.message
    exception_item_send_back(item=malformed, reason="", actor=analyst)
    drain_outbox()
    docs = expense_sandbox[0].stats_payload()["docs"]
    assert docs[inactive.document.source_id]["status"] in ("FAILED", "ERROR", "failed", "error")
    assert docs[malformed.detail["external_id"]]["status"] in ("FAILED", "ERROR", "failed", "error")
    inactive.refresh_from_db()
    assert inactive.status == "waiting"
    assert inactive.document.events.filter(action="sent_back", actor=analyst).exists()


def test_payments_in_the_erp_are_confirmed_to_the_expense_platform(conns, erp_sandbox, expense_sandbox):
    erp, expense = conns
    erp_sandbox[0].pay_after = 0  # the ERP's payment run pays every posted invoice at once
    full_sync(erp, expense)
    run(erp, "posting_status")
    drain_outbox()
    paid = EXPENSES.filter(financial_status="paid")
    assert paid.count() > 10 and not EXPENSES.filter(financial_status="posted").exists()
    doc = paid.first()
    assert doc.paid_at and doc.events.filter(action="payment_confirmed").exists()
    stats = expense_sandbox[0].stats_payload()
    assert stats["payment_confirmations"] == paid.count()
    assert stats["docs"][doc.source_id]["payments"] == 1


def test_a_run_left_running_by_a_dead_worker_is_closed_by_the_next(conns):
    from sync.models import SyncCursor

    erp, _ = conns
    ghost = SyncRun.objects.create(connection=erp, job="master_data", status="running")
    SyncCursor.objects.create(connection=erp, stream="lease:master_data", lease_until="2000-01-01T00:00:00Z")
    assert run(erp, "master_data").status == "succeeded"
    ghost.refresh_from_db()
    assert ghost.status == "failed" and "lost" in ghost.message


def erp_invoice(erp_sandbox, number: str) -> dict:
    return next(d for d in erp_sandbox[0].store.all("purchaseInvoices") if d.get("vendorInvoiceNumber") == number)


def test_what_goes_back_to_the_expense_platform_is_what_the_erp_says(conns, erp_sandbox, expense_sandbox):
    """The ERP's posting date and fiscal year, not the day we posted, also when the answer to a posting
    was lost and the posting-status pull found the document in the ERP."""
    from connectors.base import WriteOp
    from sync.health import connector_for

    erp, expense = conns
    run(erp, "master_data")
    run(expense, "expense_pull")
    writes = list(OutboundWrite.objects.filter(action="post_expense_report", status="pending").order_by("id"))
    lost = next(w for w in writes if not w.document.lines.filter(cost_center="LEGACY").exists())
    # Our first attempt reached the ERP and posted; its answer never came back.
    connector = connector_for(erp)
    connector.write(WriteOp(lost.action, lost.payload), idempotency_key=lost.idempotency_key)
    OutboundWrite.objects.filter(pk=lost.pk).update(uncertain=True, next_attempt_at="2100-01-01T00:00:00Z")
    assert run(erp, "posting_status").status == "succeeded"
    lost.document.refresh_from_db()
    assert lost.document.financial_status == "posted"  # found in the ERP by its document number
    OutboundWrite.objects.filter(pk=lost.pk).update(next_attempt_at="2000-01-01T00:00:00Z")
    drain_outbox()

    for doc in EXPENSES.filter(financial_status="posted"):
        number = OutboundWrite.objects.get(document=doc, action="post_expense_report").payload["document_number"]
        theirs = erp_invoice(erp_sandbox, number)
        told = expense_sandbox[0].store.get("state", doc.source_id)["postingDocs"][0]
        assert told["postingDate"] == theirs["postingDate"] == doc.erp_posting_date.isoformat(), doc
        assert told["fiscalYear"] == theirs["postingDate"][:4] == doc.erp_fiscal_year, doc
    # the recovered one was confirmed once, and posted once
    assert OutboundWrite.objects.filter(document=lost.document, action="posting_confirmation").count() == 1
    assert max(erp_documents_per_number(erp_sandbox).values()) == 1
