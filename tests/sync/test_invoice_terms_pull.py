"""Due dates through the real pulls: the ERP's vendors and payment terms (BC sandbox), then Coupa's
invoices and an e-invoice, both sandboxes real HTTP servers (in-thread), the jobs called as functions."""

from __future__ import annotations

import pytest

from connectors.coupa.sandbox.server import CoupaSandbox
from connectors.sandboxkit.kit import run_in_thread
from sync.jobs.einvoice_inbox import einvoice_receive
from tests.conftest import SMALL_WORLD, TODAY
from tests.support.einvoices import FIXTURES
from tests.support.pipeline import run
from tests.support.sandboxes import p2p_connections
from workbench.date_formulas import evaluate
from workbench.models import Document, PaymentTerm, Supplier

pytestmark = pytest.mark.django_db
MIN_VAT = (FIXTURES / "bis-billing-3-testfiles" / "Invoice-Min_content_with_VAT.xml").read_bytes()


@pytest.fixture
def coupa_sandbox():
    sandbox = CoupaSandbox(data_path=None, seed=7, today=TODAY, **SMALL_WORLD)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    server.shutdown()


def test_vendor_terms_reach_the_ledger_and_coupa_invoices_arrive_with_theirs(erp_sandbox, coupa_sandbox):  # noqa: F811
    erp, coupa = p2p_connections(erp_sandbox[1], coupa_sandbox[1])
    assert run(erp, "master_data").status == "succeeded"
    term = PaymentTerm.objects.filter(code="1.5%10N30").first()
    assert (term.due_date_calculation, term.discount_date_calculation) == ("30D", "10D")
    assert Supplier.objects.exclude(payment_terms_code="").count() == Supplier.objects.count() > 0

    assert run(coupa, "procurement_pull").status == "succeeded"
    invoices = Document.objects.filter(kind="supplier_invoice", source_system="coupa")
    assert invoices.exists() and not invoices.filter(due_date__isnull=True).exists()
    discounted = invoices.filter(discount_percent__isnull=False)
    assert discounted.exists() and {d.payment_terms for d in discounted} == {"2/10 NET30"}
    assert all(d.discount_due_date < d.due_date for d in discounted)


def test_an_einvoice_without_a_due_date_gets_its_vendors_erp_terms(erp_sandbox):  # noqa: F811
    erp, _ = p2p_connections(erp_sandbox[1], "http://127.0.0.1:9")
    assert run(erp, "master_data").status == "succeeded"
    vendor = Supplier.objects.exclude(tax_id="").filter(payment_terms_code="1.5%10N30").first()
    assert vendor is not None, "the seed gives some vendors 1.5 % 10 days, net 30"
    body = MIN_VAT.replace(b"SE123451234501", vendor.tax_id.encode())
    doc = einvoice_receive(content=body, filename="v.xml", channel="upload").document
    doc.refresh_from_db()
    assert doc.party_code == vendor.code
    assert doc.payment_terms == "As per contract clasuse X.123"  # the invoice's own words are kept
    assert doc.due_date == evaluate("30D", doc.document_date)
    assert (doc.discount_percent, doc.discount_due_date) == (1.5, evaluate("10D", doc.document_date))
