"""The closed loop on procure-to-pay: when the ERP refuses a supplier invoice or a PO, the procurement
suite is told, in the ERP's words (both sandboxes real HTTP servers, in-thread; jobs called as functions)."""

from __future__ import annotations

import pytest
import requests

from connectors.coupa.sandbox.server import CoupaSandbox
from connectors.sandboxkit.kit import run_in_thread
from tests.conftest import SMALL_WORLD, TODAY
from tests.support.pipeline import drain_outbox, run
from tests.support.sandboxes import p2p_connections
from workbench.models import Document, OutboundWrite
from workbench.services.postings import postings_enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def coupa_sandbox():
    sandbox = CoupaSandbox(data_path=None, seed=7, today=TODAY, **SMALL_WORLD)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    server.shutdown()


@pytest.fixture
def p2p(erp_sandbox, coupa_sandbox):
    erp, coupa = p2p_connections(erp_sandbox[1], coupa_sandbox[1])
    assert run(erp, "master_data").status == "succeeded"
    assert run(erp, "posting_status").status == "succeeded"  # the ERP's POs: what invoices are matched against
    return erp, coupa


def block_vendor_in_the_erp(erp_url: str, entity: str, vendor: str) -> None:
    """Blocked in the ERP after our last master-data pull: only the ERP knows, so only it can refuse."""
    r = requests.post(
        f"{erp_url}/sandbox/drift",
        timeout=5,
        json={
            "change": [{"stream": "suppliers", "entity": entity, "code": vendor, "field": "blocked", "value": "All"}]
        },
    )
    assert r.status_code == 200, r.text


def test_an_invoice_the_erp_refuses_is_disputed_in_the_procurement_suite_with_the_erps_words(
    p2p, erp_sandbox, coupa_sandbox
):
    erp, coupa = p2p
    assert run(coupa, "procurement_pull").status == "succeeded"
    write = (
        OutboundWrite.objects.filter(action="post_supplier_invoice", status="pending")
        .select_related("document")
        .first()
    )
    assert write is not None, "the seeded world has clean invoices to post"
    doc = write.document
    block_vendor_in_the_erp(erp_sandbox[1], doc.entity_code, doc.party_code)
    drain_outbox()

    doc.refresh_from_db()
    assert doc.financial_status == "rejected" and "blocked" in doc.erp_message
    told = OutboundWrite.objects.get(document=doc, action="invoice_status")
    assert told.status == "done" and told.payload["status"] == "disputed"
    invoice = coupa_sandbox[0].store.get("invoices", doc.source_id)
    assert invoice["status"] == "disputed"
    assert "refused" in invoice["erp-comment"] and f"Vendor {doc.party_code} is blocked" in invoice["erp-comment"]


def test_a_po_the_erp_refuses_is_shown_on_the_requisition_in_the_procurement_suite(p2p, erp_sandbox, coupa_sandbox):
    erp, coupa = p2p
    assert run(coupa, "procurement_pull").status == "succeeded"
    req = next(
        d
        for d in Document.objects.filter(kind="requisition", source_system="coupa", financial_status="not_posted")
        if d.lines.exclude(supplier_code="").exists()
    )
    vendor = req.lines.exclude(supplier_code="").first().supplier_code
    Document.objects.filter(pk=req.pk).update(business_status="approved")  # as the approval engine's last step does
    req.refresh_from_db()
    block_vendor_in_the_erp(erp_sandbox[1], req.entity_code, vendor)
    assert len(postings_enqueue([req])) == 1
    drain_outbox()

    req.refresh_from_db()
    assert req.financial_status == "rejected" and "blocked" in req.erp_message
    told = OutboundWrite.objects.get(document=req, action="requisition_validation")
    assert told.status == "done" and told.payload["status"] == "invalid"
    requisition = coupa_sandbox[0].store.get("requisitions", req.source_id)
    assert "The ERP refused to create the PO" in requisition["validation-messages"]
    assert f"Vendor {vendor} is blocked" in requisition["validation-messages"]
