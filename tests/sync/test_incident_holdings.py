"""An outage says what it holds: the documents whose writes wait for the connection, and their money
per currency, kept current as writes are held and released; a held document names its outage."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from connectors.base import TransientError
from sync import push
from sync.health import check_connection, record_failure, record_success
from tests.conftest import make_person
from tests.factories import expense_line, expense_report, master_data
from tests.support.pipeline import drain_outbox, run
from workbench.models import Connection, Document, ExceptionItem, OutboundWrite
from workbench.services.postings import postings_enqueue
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db
AT = datetime(2026, 12, 7, 10, 42, tzinfo=UTC)


def hold(conn, doc) -> OutboundWrite:
    return OutboundWrite.objects.create(
        connection=conn, document=doc, action="post_expense_report", idempotency_key=f"test:{doc.pk}", payload={}
    )


@pytest.fixture
def outage(settings):
    settings.SYNC_OUTAGE_THRESHOLD = 1
    master_data(), master_data("NW-DE", "EUR")
    us = [expense_report(), expense_report()]  # 212.40 USD each
    de = expense_report(entity="NW-DE", currency="EUR", lines=[expense_line(currency="EUR", amount=Decimal("99.50"))])
    erp = Connection.objects.create(name="Business Central", kind="business_central", role="erp", health="ok")
    for doc in [*us, de]:
        hold(erp, doc)
    with time_machine.travel(AT, tick=False):
        record_failure(erp, TransientError("connection refused"))
    return erp, us, de


def incident() -> ExceptionItem:
    return ExceptionItem.objects.get(code="CONNECTOR_UNAVAILABLE")


def test_the_incident_holds_the_money_of_its_writes_per_currency(outage):
    item = incident()
    # Its own figure is one currency's real sum: the currency most held documents are in.
    assert (item.amount_at_risk, item.currency) == (Decimal("424.80"), "USD")
    held = item.detail["held"]
    assert held["documents"] == 3
    assert {t["currency"]: (t["documents"], Decimal(t["total"])) for t in held["totals"]} == {
        "USD": (2, Decimal("424.80")),
        "EUR": (1, Decimal("99.50")),
    }


def test_its_page_lists_the_held_documents_with_amounts_and_totals(client, outage):
    erp, us, de = outage
    client.force_login(make_person("eng", "Integration engineers"))
    page = client.get(f"/items/{incident().pk}/").content.decode()
    assert 'data-testid="held-documents"' in page
    for doc in [*us, de]:
        assert f'href="/documents/{doc.pk}/"' in page
    assert "424.80 USD" in page and "99.50 EUR" in page
    assert "not added together" in page  # two currencies: no grand total


def test_it_updates_as_writes_are_held_and_released(client, outage):
    erp, us, de = outage
    later = expense_report(lines=[expense_line(amount=Decimal("1000.00"))])
    hold(erp, later)
    record_failure(erp, TransientError("connection refused"))  # the next failed probe counts it
    item = incident()
    assert (item.amount_at_risk, item.currency, item.detail["held"]["documents"]) == (Decimal("1424.80"), "USD", 4)
    record_failure(erp, TransientError("connection refused"))  # nothing new: no new history line
    assert item.events.filter(action="holdings_changed").count() == 2

    record_success(erp)
    item = incident()
    assert item.status == "resolved" and item.amount_at_risk == 0 and item.detail["held"]["documents"] == 0
    assert item.detail["released"]["documents"] == 4
    assert item.events.filter(action="released").get().reason.startswith("Released on recovery: 4 documents")
    client.force_login(make_person("eng", "Integration engineers"))
    page = client.get(f"/items/{item.pk}/").content.decode()
    assert 'data-testid="released"' in page and "1,424.80 USD" in page
    assert 'data-testid="held-documents"' not in page


def test_a_posting_queued_during_the_outage_is_counted_at_once(outage):
    erp, us, de = outage
    later = expense_report(lines=[expense_line(amount=Decimal("10.00"))])
    postings_enqueue([later])  # approved while the ERP is down: held from the start, no probe needed
    assert OutboundWrite.objects.filter(document=later, status="pending").exists()
    item = incident()
    assert (item.amount_at_risk, item.detail["held"]["documents"]) == (Decimal("434.80"), 4)


def test_a_held_document_names_its_incident_and_links_to_it(client, outage):
    erp, us, de = outage
    item = incident()
    client.force_login(make_person("eng", "Integration engineers"))
    with time_machine.travel(datetime(2026, 12, 7, 11, 5, tzinfo=UTC)):
        page = client.get(f"/documents/{us[0].pk}/").content.decode()
    assert 'data-testid="held-by"' in page
    assert "Business Central is not answering</a>" in page and "since <time" in page and ">10:42</time>" in page
    assert f'href="/items/{item.pk}/"' in page
    # A finance item on the same document says it too.
    bad = expense_report(lines=[expense_line(cost_center="NOPE")])
    documents_validate(documents=[bad])
    hold(erp, bad)
    finance_item = ExceptionItem.objects.filter(document=bad).first()
    page = client.get(f"/items/{finance_item.pk}/").content.decode()
    assert 'data-testid="held-by"' in page and f'href="/items/{item.pk}/"' in page


def test_the_outage_is_named_but_not_linked_for_someone_who_cannot_open_it(client, outage):
    erp, us, de = outage
    client.force_login(make_person("us.only", "Finance analysts", ["NW-US"]))
    page = client.get(f"/documents/{us[0].pk}/").content.decode()
    assert 'data-testid="held-by"' in page and "Business Central is not answering" in page
    assert f'href="/items/{incident().pk}/"' not in page
    assert client.get(f"/items/{incident().pk}/").status_code == 404


def test_once_it_answers_again_the_document_is_no_longer_held(client, outage):
    erp, us, de = outage
    record_success(erp)
    client.force_login(make_person("eng", "Integration engineers"))
    assert 'data-testid="held-by"' not in client.get(f"/documents/{us[0].pk}/").content.decode()


def test_through_the_real_sync_path_the_incident_counts_what_the_outage_holds(conns, erp_sandbox, expense_sandbox):
    erp, expense = conns
    run(erp, "master_data")
    erp_sandbox[0].faults.update({"down": True})
    run(expense, "expense_pull")
    for _ in range(5):
        OutboundWrite.objects.filter(status="pending").update(next_attempt_at="2000-01-01T00:00:00Z")
        push.process_outbox()
    item = incident()
    held_docs = Document.objects.filter(writes__status="pending", writes__connection=erp).distinct()
    assert item.detail["held"]["documents"] == held_docs.count() > 10
    per_currency = {}
    for doc in held_docs:
        per_currency[doc.currency] = per_currency.get(doc.currency, Decimal(0)) + doc.total
    assert {t["currency"]: Decimal(t["total"]) for t in item.detail["held"]["totals"]} == per_currency
    assert item.amount_at_risk == per_currency[item.currency] > 0

    erp_sandbox[0].faults.update({"down": False})
    assert check_connection(Connection.objects.get(pk=erp.pk))
    drain_outbox()
    item = incident()
    assert item.status == "resolved" and item.amount_at_risk == 0
    assert item.detail["released"]["documents"] == len(held_docs)
