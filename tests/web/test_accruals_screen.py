"""The accruals screen: a finance manager posts an entity's period accrual and sees what was posted and when;
analysts see it but cannot post, and nobody posts for an entity outside their scope."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from connectors.base import WriteResult
from tests.factories import master_data
from workbench.models import AccrualJournal, Connection, OutboundWrite
from workbench.services.accruals import POST_JOURNAL
from workbench.services.p2p_documents import p2p_documents_upsert
from workbench.services.postings import write_succeeded

pytestmark = pytest.mark.django_db
URL = "/p2p/accruals/post/"


@pytest.fixture
def received(jobs_sent):
    """NW-US (USD) and NW-DE (EUR), an ERP connection, and 1,500.00 USD received on NW-US and not invoiced."""
    entity = master_data("NW-US", "USD")
    master_data("NW-DE", "EUR")
    Connection.objects.create(name="Business Central", kind="business_central", role="erp", config={})
    rec = {
        "external_id": "bc-PO-7",
        "number": "PO-7",
        "entity": "NW-US",
        "vendor_number": "V100",
        "currency": "USD",
        "total": "1500.00",
        "order_date": "2026-11-02",
        "lines": [{"line_no": 1, "description": "Laptops", "account": "6110", "cost_center": "ENG",
                   "quantity": "3", "unit_cost": "500.00", "amount": "1500.00"}],
    }  # fmt: skip
    p2p_documents_upsert(system="business_central", kind="purchase_order", records=[rec])
    p2p_documents_upsert(
        system="coupa",
        kind="goods_receipt",
        records=[
            {"external_id": "r1", "po_number": "PO-7", "po_line_no": 1, "quantity": "3", "received_on": "2026-11-10"}
        ],
    )
    return entity


def toast(response) -> dict:
    return json.loads(response.headers.get("HX-Trigger", "{}")).get("toast", {})


def erp_answers(journal: AccrualJournal) -> None:
    """What sync records when the ERP has booked the journal (the answer, in the domain's terms)."""
    journal.refresh_from_db()
    OutboundWrite.objects.filter(pk=journal.write_id).update(status="done")
    write_succeeded(
        journal.write,
        WriteResult(
            external_id=journal.document_number,
            status="posted",
            message="Posted",
            data={"number": journal.document_number, "posting_date": journal.posting_date.isoformat(), "entries": 2},
        ),
    )


def test_a_manager_posts_the_accrual_and_the_page_shows_it_with_its_reversal(received, client_as):
    client = client_as("mia", "Finance managers", ["NW-US"])
    page = client.get("/p2p/accruals/").content.decode()
    assert 'data-testid="accrual-post-form"' in page and "No accrual posted yet" in page

    r = client.post(URL, {"entity": "NW-US", "period": "2026-11"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and toast(r)["level"] == "success"
    assert "ACR-NW-US-202611" in toast(r)["message"] and "1,500.00" in toast(r)["message"]
    section = r.content.decode()
    assert 'id="accrual-journals"' in section and "ACR-NW-US-202611" in section and "Queued" in section

    again = client.post(URL, {"entity": "NW-US", "period": "2026-11"}, HTTP_HX_REQUEST="true")
    assert toast(again)["level"] == "info" and "already queued" in toast(again)["message"]
    assert OutboundWrite.objects.filter(action=POST_JOURNAL).count() == 1

    erp_answers(AccrualJournal.objects.get(kind="accrual"))
    erp_answers(AccrualJournal.objects.get(kind="reversal"))
    page = client.get("/p2p/accruals/?entity=NW-US").content.decode()
    section = page.split('data-testid="accrual-journals"')[1].split("</section>")[0]
    accrual = section.split('data-testid="accrual-accrual-NW-US-2026-11"')[1].split("</tr>")[0]
    reversal = section.split('data-testid="accrual-reversal-NW-US-2026-11"')[1].split("</tr>")[0]
    assert "ACR-NW-US-202611" in accrual and "2026-11-30" in accrual and "1,500.00" in accrual
    assert "Posted" in accrual and "mia" in accrual
    assert "REV-NW-US-202611" in reversal and "2026-12-01" in reversal and "-1,500.00" in reversal
    assert "Posted" in reversal
    assert AccrualJournal.objects.get(kind="accrual").posted_at.date() <= date.today()


def test_an_analyst_sees_the_accruals_but_cannot_post(received, client_as):
    client = client_as("ann", "Finance analysts", ["NW-US"])
    page = client.get("/p2p/accruals/").content.decode()
    assert 'data-testid="accrual-journals"' in page and 'data-testid="accrual-post-form"' not in page
    assert client.post(URL, {"entity": "NW-US", "period": "2026-11"}).status_code == 403
    assert not AccrualJournal.objects.exists()


def test_a_manager_cannot_post_for_an_entity_outside_their_scope_nor_see_its_journals(received, client, client_as):
    client_as("mia", "Finance managers", ["NW-US"]).post(URL, {"entity": "NW-US", "period": "2026-10"})
    assert AccrualJournal.objects.count() == 1
    client.logout()
    client = client_as("max", "Finance managers", ["NW-DE"])
    assert client.post(URL, {"entity": "NW-US", "period": "2026-11"}, HTTP_HX_REQUEST="true").status_code == 404
    assert AccrualJournal.objects.count() == 1 and OutboundWrite.objects.count() == 1
    page = client.get("/p2p/accruals/").content.decode()
    section = page.split('data-testid="accrual-journals"')[1].split("</section>")[0]
    assert "ACR-NW-US-202610" not in section and "No accrual posted yet" in section


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        ({"entity": "NW-\x00DE", "period": "2026-11\x00"}, 200, "nothing to accrue"),  # NULs dropped, never a 500
        ({"entity": "NOPE", "period": "2026-11"}, 404, ""),
        ({"entity": "NW-US", "period": "2026-13"}, 200, "YYYY-MM"),
        ({"entity": "NW-US", "period": "x" * 5000}, 200, "YYYY-MM"),
        ({"entity": "NW-DE", "period": "2026-11"}, 200, "nothing to accrue"),
    ],
)
def test_hostile_or_empty_requests_get_a_clear_answer_and_post_nothing(received, client_as, data, status, says):
    client = client_as("mo", "Finance managers")
    r = client.post(URL, data, HTTP_HX_REQUEST="true")
    assert r.status_code == status
    if says:
        assert toast(r)["level"] == "error" and says in toast(r)["message"]
    assert not AccrualJournal.objects.exists() and not OutboundWrite.objects.exists()


def test_the_amount_posted_is_what_the_screen_shows_to_accrue(received, client_as):
    client = client_as("mia", "Finance managers", ["NW-US"])
    rni = client.get("/p2p/accruals/").content.decode().split('data-testid="rni"')[1].split("</section>")[0]
    assert "1,500.00" in rni
    client.post(URL, {"entity": "NW-US", "period": "2026-11"})
    journal = AccrualJournal.objects.get(kind="accrual")
    assert journal.amount == Decimal("1500.00")
    assert journal.lines == [
        {"cost_center": "ENG", "account": "6110", "amount": "1500.00", "description": journal.lines[0]["description"]}
    ]
