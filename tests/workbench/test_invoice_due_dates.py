"""Supplier invoices keep when they are due and what paying early saves: from the e-invoice itself,
from the procurement suite, else from the vendor's payment terms in the ERP. The queue lifts invoices
due soon; the invoice page says which discount is lost if the invoice waits."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from connectors.coupa.mapping import map_invoice
from sync.jobs.einvoice_inbox import einvoice_receive
from tests.factories import master_data
from tests.support.einvoices import FIXTURES
from workbench.due_dates import business_days_ahead, discount_amount
from workbench.models import Document, ExceptionItem, MatchTolerance, PaymentTerm, Supplier
from workbench.services.p2p_documents import p2p_documents_upsert

pytestmark = pytest.mark.django_db
MIN_VAT = (FIXTURES / "bis-billing-3-testfiles" / "Invoice-Min_content_with_VAT.xml").read_bytes()
NOTE = b"<cbc:Note>As per contract clasuse X.123</cbc:Note>"


def ubl(*, due: str = "", terms: bytes = b"") -> bytes:
    """The PEPPOL minimum invoice (issued 2018-07-31, 500 SEK payable) with a due date and terms."""
    body = MIN_VAT
    if due:
        body = body.replace(
            b"<cbc:IssueDate>2018-07-31</cbc:IssueDate>",
            b"<cbc:IssueDate>2018-07-31</cbc:IssueDate><cbc:DueDate>" + due.encode() + b"</cbc:DueDate>",
        )
    return body.replace(NOTE, NOTE + terms) if terms else body


def discount_terms(percent: str, end: str) -> bytes:
    return (
        f"<cbc:SettlementDiscountPercent>{percent}</cbc:SettlementDiscountPercent>"
        f"<cac:SettlementPeriod><cbc:EndDate>{end}</cbc:EndDate></cac:SettlementPeriod>"
    ).encode()


def test_a_ubl_invoice_keeps_its_due_date_terms_and_discount():
    got = einvoice_receive(
        content=ubl(due="2018-08-30", terms=discount_terms("2", "2018-08-10")), filename="a.xml", channel="upload"
    )
    doc = Document.objects.get(pk=got.document.pk)
    assert doc.due_date == date(2018, 8, 30)
    assert doc.payment_terms == "As per contract clasuse X.123"
    assert (doc.discount_percent, doc.discount_due_date) == (Decimal("2"), date(2018, 8, 10))
    assert discount_amount(doc.total, doc.discount_percent, doc.currency) == Decimal("10.00")
    assert doc.payment_terms_note == ""


def test_a_settlement_period_in_days_counts_from_the_invoice_date():
    terms = (
        b"<cbc:SettlementDiscountPercent>1.5</cbc:SettlementDiscountPercent>"
        b'<cac:SettlementPeriod><cbc:DurationMeasure unitCode="DAY">10</cbc:DurationMeasure></cac:SettlementPeriod>'
    )
    doc = einvoice_receive(content=ubl(terms=terms), filename="b.xml", channel="upload").document
    assert (doc.discount_percent, doc.discount_due_date) == (Decimal("1.5"), date(2018, 8, 10))


def test_hostile_terms_are_refused_one_by_one_and_the_invoice_still_arrives():
    got = einvoice_receive(
        content=ubl(due="9999-12-31", terms=discount_terms("500", "2018-08-10")), filename="c.xml", channel="upload"
    )
    assert got.ok and got.item is None
    doc = Document.objects.get(pk=got.document.pk)
    assert doc.due_date is None and doc.discount_percent is None
    assert doc.payment_terms == "As per contract clasuse X.123"  # the field that was fine is kept
    assert "9999-12-31 is too far from the invoice date" in doc.payment_terms_note
    assert "500" in doc.payment_terms_note and "not between 0 and 100" in doc.payment_terms_note


def coupa_invoice(**over) -> dict:
    payload = {
        "id": over.pop("id", 7001),
        "invoice-number": over.pop("number", "INV-7001"),
        "invoice-date": "2026-11-02T00:00:00-08:00",
        "document-type": "Invoice",
        "currency": {"code": "USD"},
        "supplier": {"number": "V100", "name": "Contoso Hardware"},
        "account-type": {"name": "NW-US"},
        "gross-total": "1234.50",
        "tax-amount": "0",
        "invoice-lines": [
            {"id": 1, "line-num": 1, "description": "Laptops", "quantity": "1", "price": "1234.50", "total": "1234.50"}
        ],
    }
    payload.update(over)
    return map_invoice(payload)


def test_a_coupa_invoice_keeps_its_payment_term_and_discount():
    master_data()
    rec = coupa_invoice(
        **{
            "payment-term": {
                "code": "2/10 NET30",
                "days-for-net-payment": 30,
                "discount-rate": "2.0",
                "days-for-discount-payment": 10,
            },
            "net-due-date": "2026-12-02T00:00:00-08:00",
        }
    )
    doc = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[rec]).touched[0]
    doc.refresh_from_db()
    assert (doc.due_date, doc.payment_terms) == (date(2026, 12, 2), "2/10 NET30")
    assert (doc.discount_percent, doc.discount_due_date) == (Decimal("2"), date(2026, 11, 12))


def test_an_older_coupa_invoice_without_a_net_due_date_counts_the_net_days():
    master_data()
    rec = coupa_invoice(**{"payment-term": {"code": "NET45", "days-for-net-payment": 45}})
    doc = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[rec]).touched[0]
    assert doc.due_date == date(2026, 12, 17) and doc.discount_percent is None


def test_a_nul_byte_in_the_terms_or_an_unreadable_due_date_is_refused_with_a_note_not_a_500():
    master_data()
    rec = coupa_invoice(**{"payment-term": {"code": "NET\x0030", "discount-rate": {"x": 1}}, "net-due-date": "soon"})
    doc = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[rec]).touched[0]
    doc.refresh_from_db()
    assert doc.payment_terms == "" and doc.due_date is None and doc.discount_percent is None
    assert "NUL" in doc.payment_terms_note and "'soon' is not a date" in doc.payment_terms_note


def _vendor_with_terms(entity, code="1.5%10N30", due="30D", discount_date="10D", percent="1.5"):
    PaymentTerm.objects.create(
        entity=entity,
        code=code,
        due_date_calculation=due,
        discount_date_calculation=discount_date,
        discount_percent=Decimal(percent),
    )
    Supplier.objects.create(entity=entity, code="V100", name="Contoso Hardware", payment_terms_code=code)


def test_an_invoice_without_terms_of_its_own_gets_its_vendors_erp_terms():
    _vendor_with_terms(master_data())
    doc = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[coupa_invoice()]).touched[0]
    doc.refresh_from_db()
    assert doc.payment_terms == "1.5%10N30"
    assert (doc.due_date, doc.discount_due_date) == (date(2026, 12, 2), date(2026, 11, 12))
    assert discount_amount(doc.total, doc.discount_percent, doc.currency) == Decimal("18.52")  # 1.5 % of 1,234.50


def test_the_invoices_own_terms_win_over_the_vendors():
    _vendor_with_terms(master_data())
    rec = coupa_invoice(**{"payment-term": {"code": "NET60", "days-for-net-payment": 60}})
    doc = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[rec]).touched[0]
    assert (doc.payment_terms, doc.due_date, doc.discount_percent) == ("NET60", date(2027, 1, 1), None)


def test_a_vendor_formula_bc_would_not_accept_gives_no_due_date_and_says_why():
    _vendor_with_terms(master_data(), code="ODD", due="net thirty", discount_date="", percent="0")
    doc = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[coupa_invoice()]).touched[0]
    doc.refresh_from_db()
    assert doc.due_date is None and doc.payment_terms == "ODD"
    assert "No due date from the vendor's payment terms" in doc.payment_terms_note


def test_an_invoice_stored_before_terms_were_kept_gets_them_on_the_next_pull():
    master_data()
    rec = coupa_invoice(**{"payment-term": {"code": "NET30", "days-for-net-payment": 30}})
    doc = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[rec]).touched[0]
    Document.objects.filter(pk=doc.pk).update(due_date=None, payment_terms="")
    result = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[rec])
    doc.refresh_from_db()
    # No new version: nothing to validate or post again, but the terms and a trace line are there.
    assert result.unchanged == [doc] and not result.changed and doc.due_date == date(2026, 12, 2)
    assert doc.events.filter(action="payment_terms").count() == 1
    p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[rec])
    assert doc.events.filter(action="payment_terms").count() == 1


# --- the queue and the invoice page ------------------------------------------------------------------


def _item_on_invoice(entity, number: str, due: date | None, **doc_fields) -> ExceptionItem:
    doc = Document.objects.create(
        kind="supplier_invoice",
        source_system="coupa",
        source_id=number,
        number=number,
        name=f"Invoice {number}",
        entity=entity,
        currency="EUR",
        total=Decimal("6172.50"),
        due_date=due,
        **doc_fields,
    )
    now = timezone.now()
    return ExceptionItem.objects.create(
        code="PRICE_VARIANCE",
        category="matching",
        kind="business",
        owner_team="ap",
        fingerprint=f"PRICE_VARIANCE:{number}",
        message="Price above the PO",
        document=doc,
        entity=entity,
        currency="EUR",
        amount_at_risk=Decimal("100"),
        sla_due_at=now + timedelta(hours=24),
        opened_at=now,
    )


@time_machine.travel("2026-12-07 09:00:00+00:00", tick=False)  # a Monday
def test_the_queue_shows_days_to_due_and_lifts_an_invoice_due_in_two_business_days(analyst_client):
    entity = master_data("NW-DE", "EUR")
    later = _item_on_invoice(entity, "INV-LATER", date(2026, 12, 27))  # 20 days
    soon = _item_on_invoice(entity, "INV-SOON", date(2026, 12, 9))  # Wednesday: 2 business days
    late = _item_on_invoice(entity, "INV-LATE", date(2026, 12, 5))
    ExceptionItem.objects.filter(pk=soon.pk).update(sla_due_at=later.sla_due_at + timedelta(hours=1))
    page = analyst_client.get("/queue/", {"status": "active"}).content.decode()
    assert page.index("INV-SOON") < page.index("INV-LATER")  # even though its SLA runs out later
    assert page.index("INV-LATE") < page.index("INV-LATER")
    assert "due in 2 d" in page and "due in 20 d" in page and "overdue 2 d" in page
    assert late.pk and soon.pk


@time_machine.travel("2026-12-07 09:00:00+00:00", tick=False)
def test_the_admin_setting_says_how_many_business_days_are_soon(analyst_client):
    entity = master_data("NW-DE", "EUR")
    first = _item_on_invoice(entity, "INV-A", None)
    second = _item_on_invoice(entity, "INV-B", date(2026, 12, 14))  # 5 business days away
    assert business_days_ahead(date(2026, 12, 7), 5) == date(2026, 12, 14)
    page = analyst_client.get("/queue/").content.decode()
    assert page.index("INV-B") < page.index("INV-A")
    MatchTolerance.objects.create(entity=entity, due_soon_days=2)
    page = analyst_client.get("/queue/").content.decode()
    assert page.index("INV-A") < page.index("INV-B")  # back to SLA order: 14 Dec is not within 2 days
    assert first.pk < second.pk


@time_machine.travel("2026-12-07 09:00:00+00:00", tick=False)
def test_a_paid_invoice_does_not_rise_and_shows_no_days_to_due(analyst_client):
    entity = master_data("NW-DE", "EUR")
    _item_on_invoice(entity, "INV-A", None)
    _item_on_invoice(entity, "INV-PAID", date(2026, 12, 8), financial_status="paid")
    page = analyst_client.get("/queue/").content.decode()
    assert page.index("INV-A") < page.index("INV-PAID") and "due in 1 d" not in page


def test_sorting_by_amount_stays_within_currency(analyst_client):
    entity = master_data("NW-DE", "EUR")
    with time_machine.travel("2026-12-07 09:00:00+00:00", tick=False):
        _item_on_invoice(entity, "INV-A", date(2026, 12, 8))
        item = _item_on_invoice(entity, "INV-B", None)
        ExceptionItem.objects.filter(pk=item.pk).update(amount_at_risk=Decimal("500"))
        page = analyst_client.get("/queue/", {"sort": "-amount"}).content.decode()
    assert page.index("INV-B") < page.index("INV-A")  # a picked sort is the person's, not the due date's


@time_machine.travel("2026-12-07 09:00:00+00:00", tick=False)
def test_the_invoice_page_shows_the_discount_at_stake_and_then_the_one_lost(analyst_client):
    entity = master_data("NW-DE", "EUR")
    item = _item_on_invoice(
        entity,
        "INV-D",
        date(2026, 12, 31),
        payment_terms="2/10 NET30",
        discount_percent=Decimal("2"),
        discount_due_date=date(2026, 12, 11),
    )
    page = analyst_client.get(f"/documents/{item.document_id}/").content.decode()
    assert "2/10 NET30" in page and "2026-12-31" in page and "due in 24 d" in page
    assert "Pay by 2026-12-11 to take the 2 % discount (123.45 EUR); lost if it waits past that date." in page
    Document.objects.filter(pk=item.document_id).update(discount_due_date=date(2026, 12, 4))  # the Friday before
    page = analyst_client.get(f"/documents/{item.document_id}/").content.decode()
    assert "Discount of 123.45 EUR lost on 2026-12-05." in page and "Pay by" not in page


def test_the_api_exposes_due_date_terms_and_discount(analyst_client):
    entity = master_data("NW-DE", "EUR")
    item = _item_on_invoice(
        entity, "INV-API", date(2026, 12, 31), discount_percent=Decimal("2"), discount_due_date=date(2026, 12, 11)
    )
    body = analyst_client.get(f"/api/documents/{item.document_id}/").json()
    assert body["due_date"] == "2026-12-31" and body["discount_due_date"] == "2026-12-11"
    assert body["discount_amount"] == "123.45" and Decimal(body["discount_percent"]) == 2


@time_machine.travel("2026-12-07 09:00:00+00:00", tick=False)
def test_the_queue_filters_invoices_due_soon_or_overdue_and_so_does_the_api(analyst_client):
    entity = master_data("NW-DE", "EUR")
    _item_on_invoice(entity, "INV-LATER", date(2026, 12, 27))
    _item_on_invoice(entity, "INV-SOON", date(2026, 12, 9))
    _item_on_invoice(entity, "INV-LATE", date(2026, 12, 5))
    soon = analyst_client.get("/queue/", {"due": "soon"}).content.decode()
    assert "INV-SOON" in soon and "INV-LATE" in soon and "INV-LATER" not in soon
    overdue = analyst_client.get("/queue/", {"due": "overdue"}).content.decode()
    assert "INV-LATE" in overdue and "INV-SOON" not in overdue
    body = analyst_client.get("/api/exceptions/", {"due": "soon"}).json()
    assert len(body.get("results", body)) == 2


@pytest.mark.parametrize(("value", "saved"), [("2", 2), ("", 5), ("61", None), ("-1", None), ("1" * 30, None)])
def test_an_admin_sets_how_many_business_days_are_soon_and_nonsense_is_refused(client, admin_user, value, saved):
    master_data("NW-DE", "EUR")
    client.force_login(admin_user)
    r = client.post(
        "/p2p/settings/tolerances/",
        {
            "entity": "",
            "price_pct": "2",
            "qty_abs": "0",
            "amount_abs": "25",
            "accept_limit": "1000",
            "due_soon_days": value,
        },
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200
    assert list(MatchTolerance.objects.values_list("due_soon_days", flat=True)) == ([saved] if saved else [])
    if saved is None:
        assert "Check the tolerance" in r.headers["HX-Trigger"]


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2026, 12, 7), 2, date(2026, 12, 9)),  # Monday -> Wednesday
        (date(2026, 12, 10), 2, date(2026, 12, 14)),  # Thursday -> over the weekend -> Monday
        (date(2026, 12, 12), 1, date(2026, 12, 14)),  # Saturday -> Monday
        (date(2026, 12, 7), 0, date(2026, 12, 7)),
    ],
)
def test_business_days_skip_weekends(start, n, expected):
    assert business_days_ahead(start, n) == expected


@pytest.mark.parametrize(
    ("total", "percent", "currency", "expected"),
    [
        (Decimal("6172.50"), Decimal("2"), "EUR", Decimal("123.45")),
        (Decimal("1234.50"), Decimal("1.5"), "USD", Decimal("18.52")),  # 18.5175, half up
        (Decimal("99999"), Decimal("1.5"), "JPY", Decimal("1500")),  # no minor units
        (Decimal("10.005"), Decimal("10"), "BHD", Decimal("1.001")),  # three
        (Decimal("-500"), Decimal("2"), "SEK", Decimal("10.00")),
        (Decimal("500"), None, "SEK", None),
    ],
)
def test_the_discount_amount_is_in_the_currencys_minor_units(total, percent, currency, expected):
    assert discount_amount(total, percent, currency) == expected


@time_machine.travel("2026-12-07 09:00:00+00:00", tick=False)
def test_the_item_page_shows_when_its_invoice_is_due(analyst_client):
    item = _item_on_invoice(master_data("NW-DE", "EUR"), "INV-I", date(2026, 12, 9), payment_terms="NET30")
    page = analyst_client.get(f"/items/{item.pk}/").content.decode()
    assert "2026-12-09 · due in 2 d" in page and "(NET30)" in page
