"""Procure-to-pay end to end on real parts: the ERP, procurement and approval sandboxes as processes,
a real Celery worker, from a requisition to an invoice that is ready for payment."""

from __future__ import annotations

import json
import urllib.request

import pytest

from sync.models import SyncRun
from tests.conftest import SMALL_WORLD, SandboxProcess, wait_until
from tests.support.sandboxes import CREDS
from workbench.models import ApprovalRule, ApprovalTask, Connection, Document, ExceptionItem, OutboundWrite

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def p2p_sandboxes(tmp_path):
    started = []
    try:
        for kind in ("business_central", "coupa", "servicenow"):
            started.append(SandboxProcess(kind, tmp_path, **SMALL_WORLD))
        yield dict(zip(("erp", "procurement", "approvals"), started, strict=True))
    finally:
        for s in started:
            s.stop()


def call(url: str, method: str = "GET", body=None, headers=None):
    req = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def run(conn: Connection, job: str) -> SyncRun:
    from sync.tasks import scheduled_job_task

    before = SyncRun.objects.filter(connection=conn, job=job, finished_at__isnull=False).count()
    scheduled_job_task.delay(conn.name, job)
    wait_until(
        lambda: SyncRun.objects.filter(connection=conn, job=job, finished_at__isnull=False).count() > before,
        120,
        message=job,
    )
    latest = SyncRun.objects.filter(connection=conn, job=job).order_by("-id").first()
    assert latest.status == "succeeded", latest.message
    return latest


def outbox_empty() -> bool:
    return not OutboundWrite.objects.filter(status__in=["pending", "sending"]).exists()


def test_requisition_to_payment_ready_across_three_systems(p2p_sandboxes, worker_factory):
    sb = p2p_sandboxes
    erp = Connection.objects.create(
        name="Business Central (ERP)",
        kind="business_central",
        role="erp",
        config={"base_url": sb["erp"].url, "environment": "sandbox", **CREDS},
    )
    coupa = Connection.objects.create(
        name="Coupa", kind="coupa", role="procurement", config={"base_url": sb["procurement"].url, **CREDS}
    )
    snow = Connection.objects.create(
        name="ServiceNow", kind="servicenow", role="approvals", config={"base_url": sb["approvals"].url, **CREDS}
    )
    ApprovalRule.objects.create(min_amount=0, levels=1)
    worker_factory("w1")

    run(erp, "master_data")
    run(snow, "approvals_pull")  # approvers and their managers
    run(coupa, "procurement_pull")
    run(erp, "posting_status")  # the ERP's purchase orders
    wait_until(outbox_empty, 90, message="approval tasks to reach the approval engine")

    # The planted problems are caught before approval; clean requisitions are waiting for an approver.
    codes = set(ExceptionItem.objects.values_list("code", flat=True))
    assert {"BLOCKED_SUPPLIER", "NO_CONTRACT", "BUDGET_EXCEEDED", "DUPLICATE_INVOICE", "PRICE_VARIANCE"} <= codes, codes
    task = ApprovalTask.objects.filter(state="requested").exclude(external_id="").select_related("document").first()
    assert task is not None
    req = task.document

    # The approver approves in the approval engine; the decision comes back and the ERP gets the PO, once.
    auth = {"Authorization": "Basic " + __import__("base64").b64encode(b"workbench:sandbox-secret").decode()}
    for _ in range(3):
        for t in ApprovalTask.objects.filter(document=req, state="requested").exclude(external_id=""):
            call(
                f"{sb['approvals'].url}/api/now/table/sysapproval_approver/{t.external_id}",
                "PATCH",
                {"state": "approved", "comments": "Within budget"},
                auth,
            )
        run(snow, "approvals_pull")
        wait_until(outbox_empty, 60, message="decisions to be written back")
        req.refresh_from_db()
        if req.erp_document_number:
            break
    assert req.business_status == "approved" and req.financial_status == "posted" and req.erp_document_number
    po_number = req.erp_document_number
    assert sb["erp"].get("/sandbox/stats")["orders"].get(po_number) == 1
    coupa_req = call(
        f"{sb['procurement'].url}/api/requisitions/{req.source_id}", headers={"X-COUPA-API-KEY": "sandbox-secret"}
    )
    assert coupa_req["status"] == "ordered" and coupa_req["erp-po-number"] == po_number

    # Goods arrive (one line partly first) and the supplier invoices them in the procurement suite.
    run(erp, "posting_status")
    po = Document.objects.get(kind="purchase_order", number=po_number)
    assert po.parent_id == req.pk
    key = {"X-COUPA-API-KEY": "sandbox-secret"}
    lines = list(po.lines.order_by("line_no"))
    for ln in lines:
        call(
            f"{sb['procurement'].url}/api/receiving_transactions",
            "POST",
            {"order-line": {"po-number": po_number, "line-num": ln.line_no}, "quantity": str(ln.quantity)},
            key,
        )
    call(
        f"{sb['procurement'].url}/api/invoices",
        "POST",
        {
            "invoice-number": "E2E-0001",
            "invoice-date": "2026-11-20",
            "supplier": {"number": po.party_code},
            "currency": {"code": po.currency},
            "invoice-lines": [
                {
                    "po-number": po_number,
                    "order-line-num": ln.line_no,
                    "quantity": str(ln.quantity),
                    "price": str(ln.unit_price),
                    "description": ln.description,
                }
                for ln in lines
            ],
        },
        key,
    )
    run(coupa, "procurement_pull")
    wait_until(
        lambda: Document.objects.filter(
            kind="supplier_invoice", number="E2E-0001", financial_status="ready_for_payment"
        ).exists(),
        90,
        message="posting",
    )
    inv = Document.objects.get(kind="supplier_invoice", number="E2E-0001")
    assert inv.match_status == "matched" and inv.erp_document_number
    assert not inv.exceptions.filter(status__in=["open", "in_progress", "waiting"]).exists()
    # The closed loop: the procurement suite shows the ERP number and that it is ready for payment.
    wait_until(outbox_empty, 60, message="invoice status write-back")
    coupa_inv = call(f"{sb['procurement'].url}/api/invoices?invoice-number=E2E-0001", headers=key)[0]
    assert (
        coupa_inv["payment-status"] == "ready_for_payment"
        and coupa_inv["erp-document-number"] == inv.erp_document_number
    )
    # Received quantities were all invoiced: nothing left to accrue for this PO.
    assert all(ln.received_quantity == ln.invoiced_quantity for ln in po.lines.all())
