"""Credit notes through the closed loop: a supplier's credit note from the procurement suite is booked
in the ERP as a purchase credit memo applied to the invoice it corrects, once, written back to the
source and shown in the trace of both documents (both sandboxes real HTTP servers, in-thread)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.business_central.connector import BusinessCentralConnector
from connectors.coupa.connector import CoupaConnector
from connectors.coupa.sandbox.server import CoupaSandbox
from connectors.sandboxkit.kit import run_in_thread
from sync import push
from sync.jobs.einvoice_inbox import einvoice_receive
from tests.conftest import SMALL_WORLD, TODAY
from tests.support.pipeline import drain_outbox, run
from tests.support.sandboxes import CREDS, p2p_connections
from tests.sync.test_p2p_refusals import block_vendor_in_the_erp
from workbench.models import Document, DocumentEvent, ErpPosting, OutboundWrite
from workbench.selectors.balances import supplier_open_balance

pytestmark = pytest.mark.django_db
CREDIT = Decimal("40.00")


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
    assert run(erp, "posting_status").status == "succeeded"
    assert run(coupa, "procurement_pull").status == "succeeded"
    return erp, coupa


def coupa_invoice(**filters) -> Document:
    doc = (
        Document.objects.filter(kind="supplier_invoice", source_system="coupa", total__gt=0, **filters)
        .exclude(lines__po_line_no=None)
        .order_by("id")
        .first()
    )
    assert doc is not None, "the seeded world has invoices on POs"
    return doc


def send_credit_note(coupa_url: str, invoice: Document, number: str) -> dict:
    """The supplier's credit note in the procurement suite, naming the invoice it corrects."""
    line = invoice.lines.exclude(po_line_no=None).first()
    body = {
        "invoice-number": number,
        "invoice-date": TODAY.isoformat(),
        "document-type": "Credit Note",
        "original-invoice-number": invoice.number,
        "supplier": {"number": invoice.party_code},
        "currency": {"code": invoice.currency},
        "invoice-lines": [
            {
                "description": "Price correction",
                "quantity": "1",
                "price": str(CREDIT),
                "po-number": invoice.po_number,
                "order-line-num": line.po_line_no,
            }
        ],
    }
    http = CoupaConnector({"base_url": coupa_url, **CREDS}).http
    return http.json_of(http.request("POST", "api/invoices", json_body=body))


def erp_vendor_balance(erp_sandbox, invoice: Document) -> Decimal:
    """The vendor's ``balance`` as BC's API shows it."""
    conn = BusinessCentralConnector({"base_url": erp_sandbox[1], **CREDS})
    company = next(c for c in conn._load_companies() if c["name"] == invoice.entity_code)
    params = {"$filter": f"number eq '{invoice.party_code}'"}
    rows = conn.http.json_of(conn.http.request("GET", f"companies({company['id']})/vendors", params=params))["value"]
    return Decimal(str(rows[0]["balance"]))


def erp_open_of_ours(erp_sandbox, vendor: str) -> Decimal:
    """What the ERP holds open for this vendor of the documents the workbench booked (net of tax)."""
    ours = set(ErpPosting.objects.values_list("erp_id", flat=True))
    store = erp_sandbox[0].store

    def open_total(doc_set: str) -> Decimal:
        return sum(
            (
                Decimal(str(d["totalAmountExcludingTax"]))
                for d in store.all(doc_set)
                if d["id"] in ours and d["vendorNumber"] == vendor and d["status"] == "Open"
            ),
            Decimal(0),
        )

    return open_total("purchaseInvoices") - open_total("purchaseCreditMemos")


def posted_credit_memos(erp_sandbox) -> list[dict]:
    return [d for d in erp_sandbox[0].store.all("purchaseCreditMemos") if d["status"] in ("Open", "Paid")]


def test_a_credit_note_is_booked_once_applied_to_its_invoice_and_written_back(
    p2p, erp_sandbox, coupa_sandbox, analyst_client
):
    erp, coupa = p2p
    drain_outbox()
    invoice = coupa_invoice(financial_status="ready_for_payment")
    before = supplier_open_balance(invoice.entity, invoice.party_code)[invoice.currency]
    erp_before = erp_vendor_balance(erp_sandbox, invoice)

    sent = send_credit_note(coupa_sandbox[1], invoice, "CN-7001")
    assert run(coupa, "procurement_pull").status == "succeeded"
    cn = Document.objects.get(source_system="coupa", source_id=str(sent["id"]))
    assert cn.total == -CREDIT and cn.corrects == invoice
    write = OutboundWrite.objects.get(document=cn, action="post_credit_note")
    assert write.payload["invoice_number"] == invoice.erp_document_number

    # The first answer is lost (the ERP booked it, the workbench never heard): the retry finds it.
    erp.config["timeout"] = 1
    erp.save()
    erp_sandbox[0].faults.update({"timeout_rate": 1, "timeout_methods": ["POST"], "hang_seconds": 2})
    OutboundWrite.objects.filter(pk=write.pk).update(next_attempt_at="2000-01-01T00:00:00Z")
    push.process_outbox()
    write.refresh_from_db()
    assert write.status == "pending" and write.attempts == 1
    erp_sandbox[0].faults.update({"timeout_rate": 0})
    drain_outbox()
    # And a second delivery of the same write (a worker dying before it recorded the answer) is no second memo.
    OutboundWrite.objects.filter(pk=write.pk).update(status="pending")
    drain_outbox()

    memos = posted_credit_memos(erp_sandbox)
    assert [(m["vendorCreditMemoNumber"], m["invoiceNumber"]) for m in memos] == [
        ("CN-7001", invoice.erp_document_number)
    ]
    cn.refresh_from_db()
    assert cn.financial_status == "posted" and cn.erp_document_number == memos[0]["number"]
    posting = ErpPosting.objects.get(document=cn)
    assert (posting.kind, posting.amount, posting.erp_number) == ("credit_memo", -CREDIT, memos[0]["number"])

    # Written back: the procurement suite shows the credit note approved with the ERP's number.
    source = coupa_sandbox[0].store.get("invoices", str(sent["id"]))
    assert source["status"] == "approved" and source["erp-document-number"] == cn.erp_document_number
    # In the trace of both documents.
    assert DocumentEvent.objects.filter(document=cn, action="credit_memo_booked").count() == 1
    on_invoice = DocumentEvent.objects.get(document=invoice, action="credit_note_booked")
    assert "CN-7001" in on_invoice.message and cn.erp_document_number in on_invoice.message

    # The supplier's open balance moves by the credit in the ERP and in the workbench alike, and what
    # the ERP holds open of the documents the workbench booked equals the workbench's balance. (The
    # ERP's whole vendor balance also holds invoices booked there by others before us.)
    after = supplier_open_balance(invoice.entity, invoice.party_code)[invoice.currency]
    assert after == before - CREDIT
    assert erp_vendor_balance(erp_sandbox, invoice) == erp_before - CREDIT
    assert erp_open_of_ours(erp_sandbox, invoice.party_code) == after

    # The invoice's page names its credit note and the supplier's open balance; the credit note's, its invoice.
    page = analyst_client.get(f"/documents/{invoice.pk}/").content.decode()
    assert f"/documents/{cn.pk}/" in page and "CN-7001" in page and "Supplier open balance" in page
    assert f"{after:,.2f}" in page
    page = analyst_client.get(f"/documents/{cn.pk}/").content.decode()
    assert f"/documents/{invoice.pk}/" in page and invoice.erp_document_number in page


def test_a_credit_note_for_an_invoice_not_yet_posted_waits_for_it_then_posts(p2p, erp_sandbox, coupa_sandbox):
    erp, coupa = p2p
    pending = OutboundWrite.objects.filter(action="post_supplier_invoice", status="pending")
    invoice = coupa_invoice(pk__in=pending.values("document_id"))
    sent = send_credit_note(coupa_sandbox[1], invoice, "CN-7002")
    assert run(coupa, "procurement_pull").status == "succeeded"

    cn = Document.objects.get(source_system="coupa", source_id=str(sent["id"]))
    assert cn.corrects == invoice and cn.financial_status == "not_posted"
    assert not OutboundWrite.objects.filter(document=cn).exists()
    waits = DocumentEvent.objects.get(document=cn, action="waits_for_invoice")
    assert invoice.number in waits.message  # visible, not silent: in its trace and in the queue
    assert cn.exceptions.get().code == "CREDIT_NOTE_WAITING"

    drain_outbox()  # the invoice posts, and the credit note follows it
    invoice.refresh_from_db()
    cn.refresh_from_db()
    assert invoice.financial_status == "ready_for_payment"
    assert cn.financial_status == "posted" and cn.exceptions.get().status == "resolved"
    assert [m["invoiceNumber"] for m in posted_credit_memos(erp_sandbox)] == [invoice.erp_document_number]


def test_a_credit_note_the_erp_refuses_is_disputed_in_the_source_in_the_erps_words(p2p, erp_sandbox, coupa_sandbox):
    erp, coupa = p2p
    drain_outbox()
    invoice = coupa_invoice(financial_status="ready_for_payment")
    sent = send_credit_note(coupa_sandbox[1], invoice, "CN-7003")
    block_vendor_in_the_erp(erp_sandbox[1], invoice.entity_code, invoice.party_code)  # only the ERP knows
    assert run(coupa, "procurement_pull").status == "succeeded"
    drain_outbox()

    cn = Document.objects.get(source_system="coupa", source_id=str(sent["id"]))
    assert cn.financial_status == "rejected" and "blocked" in cn.erp_message
    assert cn.exceptions.filter(code="ERP_REJECTED").exists()
    source = coupa_sandbox[0].store.get("invoices", str(sent["id"]))
    assert source["status"] == "disputed" and "blocked" in source["erp-comment"]
    assert posted_credit_memos(erp_sandbox) == []


def ubl_credit_note(invoice: Document, number: str) -> bytes:
    """A PEPPOL BIS 3 credit note naming the PO and, in BillingReference, the invoice it corrects."""
    cur = invoice.currency
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<CreditNote xmlns="urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>
  <cbc:ID>{number}</cbc:ID>
  <cbc:IssueDate>{TODAY.isoformat()}</cbc:IssueDate>
  <cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>
  <cbc:DocumentCurrencyCode>{cur}</cbc:DocumentCurrencyCode>
  <cac:OrderReference><cbc:ID>{invoice.po_number}</cbc:ID></cac:OrderReference>
  <cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>{invoice.number}</cbc:ID></cac:InvoiceDocumentReference></cac:BillingReference>
  <cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>{invoice.party_name}</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>Northwind</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal>
    <cbc:LineExtensionAmount currencyID="{cur}">{CREDIT}</cbc:LineExtensionAmount>
    <cbc:PayableAmount currencyID="{cur}">{CREDIT}</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
  <cac:CreditNoteLine>
    <cbc:ID>1</cbc:ID>
    <cbc:CreditedQuantity unitCode="EA">1</cbc:CreditedQuantity>
    <cbc:LineExtensionAmount currencyID="{cur}">{CREDIT}</cbc:LineExtensionAmount>
    <cac:Item><cbc:Name>Price correction</cbc:Name></cac:Item>
    <cac:Price><cbc:PriceAmount currencyID="{cur}">{CREDIT}</cbc:PriceAmount></cac:Price>
  </cac:CreditNoteLine>
</CreditNote>""".encode()


def test_a_ubl_credit_note_is_booked_against_the_invoice_it_names_and_the_trace_says_there_is_no_channel_back(
    p2p, erp_sandbox
):
    drain_outbox()
    invoice = coupa_invoice(financial_status="ready_for_payment")
    got = einvoice_receive(content=ubl_credit_note(invoice, "SCN-9"), filename="scn-9.xml", channel="API")
    cn = got.document
    assert cn is not None and cn.total == -CREDIT and cn.corrects == invoice
    drain_outbox()

    cn.refresh_from_db()
    assert cn.financial_status == "posted"
    assert [(m["vendorCreditMemoNumber"], m["invoiceNumber"]) for m in posted_credit_memos(erp_sandbox)] == [
        ("SCN-9", invoice.erp_document_number)
    ]
    told = DocumentEvent.objects.get(document=cn, action="no_source_channel")
    assert "no channel back" in told.message and cn.erp_document_number in told.message
    assert DocumentEvent.objects.filter(document=invoice, action="credit_note_booked").exists()
