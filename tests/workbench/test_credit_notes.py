"""Which invoice a credit note corrects, and when it may go to the ERP (no sandboxes: the outbox rows
the domain writes are what is checked; tests/sync/test_credit_notes.py runs the whole loop)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.workbench.test_p2p import invoice, price_variance_item
from tests.workbench.test_p2p import p2p as p2p_world  # noqa: F401 (the fixture)
from workbench.models import Connection, Document, DocumentEvent, ErpPosting, OutboundWrite
from workbench.selectors.balances import supplier_open_balance
from workbench.services.invoices import credit_note_apply
from workbench.services.p2p_documents import p2p_documents_upsert
from workbench.services.postings import POST_CREDIT_NOTE, postings_enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def erp(request):
    request.getfixturevalue("p2p_world")  # NW-US, supplier V100, categories (tests/workbench/test_p2p.py)
    return Connection.objects.create(name="ERP", kind="business_central", role="erp", config={})


def credit_note(number: str, amount: str = "50.00", **extra) -> Document:
    rec = {
        "external_id": f"cn-{number}",
        "number": number,
        "document_type": "credit_note",
        "supplier_code": "V100",
        "entity": "NW-US",
        "currency": "USD",
        "invoice_date": date.today().isoformat(),
        "total": amount,
        "lines": [{"line_no": 1, "description": "Credit", "quantity": "1", "unit_price": amount, "amount": amount}],
        **extra,
    }
    doc = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[rec]).touched[0]
    credit_note_apply(credit_note=doc)
    doc.refresh_from_db()
    return doc


def test_a_credit_note_without_a_reference_corrects_the_invoice_whose_variance_it_settles(erp, analyst_client):
    item = price_variance_item(None)
    analyst_client.post(f"/items/{item.pk}/credit-note/", {"reason": ""})
    cn = credit_note("CN-1", po_number="PO-1")
    assert cn.corrects == item.document
    assert (
        "the invoice whose variance it settles"
        in DocumentEvent.objects.get(document=cn, action="corrects_invoice").message
    )
    # The invoice is not booked in the ERP yet: the credit note waits for it, and says so.
    assert postings_enqueue([cn]) == []
    assert "waits for invoice INV-PV" in DocumentEvent.objects.get(document=cn, action="waits_for_invoice").message
    [item] = cn.exceptions.all()  # in the accounts-payable queue too, not only in its trace
    assert (item.code, item.status, item.amount_at_risk) == ("CREDIT_NOTE_WAITING", "open", Decimal("-50.00"))
    postings_enqueue([cn])  # asked again: still one line in its trace, not one per ask
    assert DocumentEvent.objects.filter(document=cn, action="waits_for_invoice").count() == 1
    assert cn.exceptions.count() == 1


def test_a_credit_note_naming_an_unknown_invoice_waits_and_a_hostile_reference_is_cleaned(erp, analyst_client):
    cn = credit_note("CN-2", corrects_number="INV-\x00404" + "9" * 500)
    assert cn.corrects is None and cn.corrects_number == ("INV-404" + "9" * 500)[:60]
    assert postings_enqueue([cn]) == []
    assert "(not received yet)" in DocumentEvent.objects.get(document=cn, action="waits_for_invoice").message
    html = analyst_client.get(f"/items/{cn.exceptions.get().pk}/").content.decode()
    assert 'data-testid="credit-note-waiting"' in html and "INV-404" in html
    assert not OutboundWrite.objects.filter(document=cn).exists()


def test_a_credit_note_for_a_booked_invoice_is_queued_as_a_credit_memo_applied_to_it(erp):
    inv, _ = invoice("INV-77", [(None, 2, "100.00")], po_number="")
    Document.objects.filter(pk=inv.pk).update(financial_status="ready_for_payment", erp_document_number="PPI-1")
    cn = credit_note("CN-3", amount="40.00", corrects_number="inv 77")  # the supplier's spelling of it
    assert cn.corrects == inv
    [write] = postings_enqueue([cn])
    assert write.action == POST_CREDIT_NOTE and write.idempotency_key == cn.posting_key
    assert write.payload["invoice_number"] == "PPI-1" and write.payload["document_number"] == "CN-3"
    assert [(ln["quantity"], ln["unit_cost"]) for ln in write.payload["lines"]] == [("1.0000", "40.000000")]
    assert postings_enqueue([cn]) == []  # once


def test_a_credit_note_on_account_goes_to_the_erp_without_an_invoice(erp):
    cn = credit_note("CN-4")
    assert cn.corrects is None
    [write] = postings_enqueue([cn])
    assert write.payload["invoice_number"] == "" and write.action == POST_CREDIT_NOTE


def test_the_open_balance_counts_what_the_erp_holds_of_unpaid_invoices_less_credit_notes(erp):
    inv, _ = invoice("INV-88", [(None, 2, "100.00")], po_number="")
    other, _ = invoice("INV-89", [(None, 1, "30.00")], po_number="")
    cn = credit_note("CN-5", amount="40.00", corrects_number="INV-88")
    entity = inv.entity
    assert supplier_open_balance(entity, "V100") == {}  # nothing booked yet
    Document.objects.filter(pk__in=[inv.pk, other.pk]).update(financial_status="ready_for_payment")
    booked = timezone.now()
    Document.objects.filter(pk=cn.pk).update(financial_status="posted", posted_at=booked)
    assert supplier_open_balance(entity, "V100") == {}  # still nothing the ERP holds
    for n, (doc, kind, amount) in enumerate(
        [(inv, "supplier_invoice", "200.00"), (other, "supplier_invoice", "30.00"), (cn, "credit_memo", "-40.00")]
    ):
        ErpPosting.objects.create(
            kind=kind,
            connection=erp,
            entity=entity,
            document=doc,
            erp_id=f"erp-{n}",
            amount=Decimal(amount),
            currency="USD",
            posting_date=date.today(),
            period=date.today().isoformat()[:7],
        )
    assert supplier_open_balance(entity, "V100") == {"USD": Decimal("190.00")}
    # The invoice is paid net of its credit note: neither is open any more.
    Document.objects.filter(pk=inv.pk).update(financial_status="paid", paid_at=booked + timedelta(hours=1))
    assert supplier_open_balance(entity, "V100") == {"USD": Decimal("30.00")}
    # A credit booked after the invoice was paid is a credit the supplier still owes us.
    Document.objects.filter(pk=inv.pk).update(paid_at=booked - timedelta(hours=1))
    assert supplier_open_balance(entity, "V100") == {"USD": Decimal("-10.00")}
