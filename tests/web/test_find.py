"""Find anything: any id in any system opens its document (or lists the candidates), only in scope;
and the documents list filters like the queue."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from tests.factories import expense_line, expense_report, master_data
from workbench.models import Connection, Document, ErpPosting, Supplier
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def docs():
    us, de = master_data(), master_data("NW-DE", "EUR")
    report = expense_report(external_id="C-88120", report_id="RPT-4411", number="R-2026-0042")
    erp = Connection.objects.create(name="Business Central", kind="business_central", role="erp")
    ErpPosting.objects.create(
        kind="expense_report", connection=erp, entity=us, document=report, erp_id="6f1c2a9e-erp-guid",
        erp_number="108001", reference="R-2026-0042", amount=report.total, currency="USD",
        posting_date=date(2026, 11, 12), period="2026-11",
    )  # fmt: skip
    Document.objects.filter(pk=report.pk).update(erp_document_number="108001")
    Supplier.objects.create(entity=de, code="V100", name="Contoso GmbH", tax_id="DE136695976")
    po = Document.objects.create(
        kind="purchase_order", source_system="coupa", source_id="coupa-po-9", number="PO-100", entity=de,
        entity_code="NW-DE", party_code="V100", party_name="Contoso GmbH", currency="EUR", total=Decimal("900"),
    )  # fmt: skip
    invoice = Document.objects.create(
        kind="supplier_invoice", source_system="coupa", source_id="coupa-inv-31", number="INV-7781", entity=de,
        entity_code="NW-DE", party_code="V100", party_name="Contoso GmbH", party_tax_id="DE 136 695 976",
        currency="EUR", total=Decimal("450.00"), po_number="PO-100", number_key="INV7781",
    )  # fmt: skip
    return {"report": report, "po": po, "invoice": invoice, "us": us, "de": de}


def lands_on(response, doc) -> bool:
    return response.status_code == 302 and response["Location"] == f"/documents/{doc.pk}/"


@pytest.mark.parametrize(
    "query, which",
    [
        ("C-88120", "report"),  # the source's id (Concur's document id)
        ("RPT-4411", "report"),  # the source's report id (crosswalk)
        ("R-2026-0042", "report"),  # the report number (and the number sent to the ERP)
        ("r-2026-0042", "report"),  # as typed in lower case
        ("108001", "report"),  # the ERP's document number
        ("6f1c2a9e-erp-guid", "report"),  # the ERP's id of the document
        ("INV-7781", "invoice"),  # the supplier's invoice number
        ("coupa-inv-31", "invoice"),  # the procurement suite's id
        ("PO-100", "po"),  # the PO number opens the PO, not the invoices that refer to it
    ],
)
def test_each_kind_of_id_lands_on_its_document(client_as, docs, query, which):
    client = client_as("ana", "Finance analysts")
    assert lands_on(client.get("/search/", {"q": query}), docs[which])


def test_a_correlation_id_lands_on_its_document_however_it_is_written(client_as, docs):
    client = client_as("ana", "Finance analysts")
    cid = str(docs["invoice"].correlation_id)
    assert lands_on(client.get("/search/", {"q": cid}), docs["invoice"])
    assert lands_on(client.get("/search/", {"q": f"  {cid.upper()} "}), docs["invoice"])


def test_a_supplier_tax_id_however_typed_lists_that_suppliers_documents(client_as, docs):
    client = client_as("ana", "Finance analysts")
    for typed in ["DE136695976", "de 136-695-976"]:
        response = client.get("/search/", {"q": typed})
        page = response.content.decode()
        assert response.status_code == 200, typed
        assert f'data-document="{docs["po"].pk}"' in page and f'data-document="{docs["invoice"].pk}"' in page
        assert "supplier Contoso GmbH (tax id DE136695976)" in page
        assert f'data-document="{docs["report"].pk}"' not in page


def test_several_documents_with_the_id_give_a_candidate_list_saying_what_matched_where(client_as, docs):
    other = expense_report(entity="NW-DE", currency="EUR", number="INV-7781", external_id="C-99")
    client = client_as("ana", "Finance analysts")
    response = client.get("/search/", {"q": "INV-7781"})
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("<tr data-document=") == 2
    assert "Supplier invoice number" in page and "Expense report number" in page
    assert f'href="/documents/{other.pk}/"' in page and f'href="/documents/{docs["invoice"].pk}/"' in page


def test_an_id_only_other_documents_refer_to_lists_them_as_such(client_as, docs):
    Document.objects.filter(pk=docs["po"].pk).update(number="PO-100-X")  # the PO itself has not arrived
    client = client_as("ana", "Finance analysts")
    page = client.get("/search/", {"q": "PO-100"}).content.decode()
    assert "No document has the id" in page
    assert f'data-document="{docs["invoice"].pk}"' in page and "Supplier invoice for purchase order PO-100" in page


def test_outside_ones_entities_an_id_finds_nothing_and_is_not_counted(client_as, docs):
    client = client_as("us.only", "Finance analysts", ["NW-US"])
    for query in ["INV-7781", "coupa-inv-31", str(docs["invoice"].correlation_id), "DE136695976", "PO-100"]:
        response = client.get("/search/", {"q": query})
        page = response.content.decode()
        assert response.status_code == 200, query
        assert 'data-testid="search-none"' in page and "/documents/" + str(docs["invoice"].pk) not in page, query
    # The same number in and out of scope: the one in scope opens directly (the other is not a candidate).
    Document.objects.filter(pk=docs["invoice"].pk).update(number="R-2026-0042")
    assert lands_on(client.get("/search/", {"q": "R-2026-0042"}), docs["report"])


@pytest.mark.parametrize("query", ["%", "_", "%%", "R-2026%", "'", '"', "' OR 1=1 --", "R_2026_0042", "*", "\\"])
def test_wildcards_and_quotes_are_plain_characters(client_as, docs, query):
    client = client_as("ana", "Finance analysts")
    response = client.get("/search/", {"q": query})
    assert response.status_code == 200
    assert 'data-testid="search-none"' in response.content.decode()


def test_hostile_input_gets_a_clear_answer_not_a_500(client_as, docs):
    client = client_as("ana", "Finance analysts")
    huge = client.get("/search/", {"q": "A" * 10_000_000})
    assert huge.status_code == 400 and "no id in any system is longer than 200" in huge.content.decode()
    assert lands_on(client.get("/search/?q=INV-7781%00"), docs["invoice"])  # a NUL is taken out at the door
    tab = client.get("/search/", {"q": "INV\t7781"})
    assert tab.status_code == 400 and "control characters" in tab.content.decode()
    empty = client.get("/search/", {"q": "   "})
    assert empty.status_code == 200 and "Type or paste an id" in empty.content.decode()


def test_the_search_box_is_in_the_nav(client_as, docs):
    page = client_as("ana", "Finance analysts").get("/queue/").content.decode()
    assert 'action="/search/"' in page and 'data-testid="find"' in page and 'href="/documents/"' in page


# --- the documents list ----------------------------------------------------------------------------


def rows(response) -> set[int]:
    return {int(pk) for pk in re.findall(r'<tr data-document="(\d+)"', response.content.decode())}


def test_the_documents_list_filters_like_the_queue(client_as, docs):
    broken = expense_report(lines=[expense_line(cost_center="")])
    documents_validate(documents=[broken])
    client = client_as("ana", "Finance analysts")
    everything = rows(client.get("/documents/"))
    assert {docs["report"].pk, docs["po"].pk, docs["invoice"].pk, broken.pk} <= everything
    assert rows(client.get("/documents/", {"kind": "supplier_invoice"})) == {docs["invoice"].pk}
    assert rows(client.get("/documents/", {"entity": "NW-DE"})) == {docs["po"].pk, docs["invoice"].pk}
    assert rows(client.get("/documents/", {"source_system": "coupa"})) == {docs["po"].pk, docs["invoice"].pk}
    assert rows(client.get("/documents/", {"open_exceptions": "true"})) == {broken.pk}
    assert broken.pk not in rows(client.get("/documents/", {"open_exceptions": "false"}))
    assert rows(client.get("/documents/", {"q": "contoso", "kind": "purchase_order"})) == {docs["po"].pk}
    Document.objects.filter(pk=docs["po"].pk).update(business_status="pending")
    assert rows(client.get("/documents/", {"business_status": "pending"})) == {docs["po"].pk}
    assert rows(client.get("/documents/", {"financial_status": "posted"})) == set()


def test_the_documents_list_answers_htmx_with_its_results_only_and_pages(client_as, docs):
    client = client_as("ana", "Finance analysts")
    partial = client.get("/documents/", {"kind": "supplier_invoice"}, HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in body and 'data-testid="documents"' in body
    for n in range(55):
        expense_report(external_id=f"BULK{n}")
    first = client.get("/documents/")
    assert len(rows(first)) == 50 and "Page 1 of 2" in first.content.decode()
    assert len(rows(client.get("/documents/", {"page": 2}))) == 8
    assert client.get("/documents/", {"page": "x" * 5000, "q": "%" * 100_000}).status_code == 200


def test_the_documents_list_shows_only_ones_entities(client_as, docs):
    client = client_as("de.only", "Finance analysts", ["NW-DE"])
    assert rows(client.get("/documents/")) == {docs["po"].pk, docs["invoice"].pk}
    # Another entity's code is not accepted as a filter: it opens nothing of that entity.
    assert docs["report"].pk not in rows(client.get("/documents/", {"entity": "NW-US"}))


# --- the same search in the API --------------------------------------------------------------------


def test_the_api_finds_by_any_id_with_what_matched_and_only_in_scope(client_as, docs):
    client = client_as("ana", "Finance analysts")
    body = client.get("/api/documents/find/", {"q": "108001"}).json()
    assert [r["document"]["id"] for r in body["results"]] == [docs["report"].pk]
    assert set(body["results"][0]["matched"]) == {"ERP document number", "Business Central document number"}
    assert body["related"] is False
    scoped = client_as("us.only", "Finance analysts", ["NW-US"])
    assert scoped.get("/api/documents/find/", {"q": "INV-7781"}).json()["results"] == []
    too_long = scoped.get("/api/documents/find/", {"q": "x" * 5000})
    assert too_long.status_code == 400 and "longer than 200" in too_long.json()["detail"]
    schema = client.get("/api/schema/").content.decode()
    assert "/api/documents/find/" in schema and "FindResult" in schema
