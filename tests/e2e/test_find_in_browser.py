"""Find anything in Chromium: an id typed in the nav's box opens its document; a supplier's tax id
lists its documents; the documents list filters without a reload; an outage's page lists what it holds."""

import os
import re
from decimal import Decimal

import pytest

from connectors.base import TransientError
from sync.health import record_failure
from tests.factories import expense_line, expense_report, master_data
from tests.support.browser import login
from workbench.models import Connection, Document, OutboundWrite, Supplier

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SHOTS = os.environ.get("FIND_SCREENSHOTS", "")  # a folder: the screens are saved there for a look


def shot(page, name):
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def test_an_id_in_the_nav_box_opens_its_document(live_server, page, analyst, settings):
    master_data()
    de = master_data("NW-DE", "EUR")
    report = expense_report(number="R-2026-0042")
    Supplier.objects.create(entity=de, code="V100", name="Contoso GmbH", tax_id="DE136695976")
    for n, kind in enumerate(["purchase_order", "supplier_invoice"]):
        Document.objects.create(
            kind=kind, source_system="coupa", source_id=f"coupa-{n}", number=f"CT-{n}", entity=de, entity_code="NW-DE",
            party_code="V100", party_name="Contoso GmbH", currency="EUR", total=Decimal("450.00"),
        )  # fmt: skip
    login(page, live_server.url)

    page.fill("[data-testid=find]", "r-2026-0042")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/documents/{report.pk}/")
    assert "R-2026-0042" in page.locator("h1").inner_text()

    page.fill("[data-testid=find]", "de 136 695 976")
    page.keyboard.press("Enter")
    page.locator("[data-testid=candidates]").wait_for()
    assert page.locator("[data-testid=candidates] tbody tr").count() == 2
    shot(page, "search-candidates")
    page.locator("[data-testid=candidates] a", has_text="Purchase order CT-0").click()
    page.wait_for_url(re.compile(r".*/documents/\d+/$"))
    assert "CT-0" in page.locator("h1").inner_text()

    page.fill("[data-testid=find]", "nothing-like-this%_")
    page.keyboard.press("Enter")
    page.locator("[data-testid=search-none]").wait_for()
    shot(page, "search-none")

    page.goto(f"{live_server.url}/documents/")
    page.locator("select[name=entity]").select_option("NW-DE")
    page.wait_for_url(re.compile(r".*entity=NW-DE.*"))
    page.locator("[data-testid=documents-count]", has_text="2 documents").wait_for()
    shot(page, "documents-list")

    settings.SYNC_OUTAGE_THRESHOLD = 1
    erp = Connection.objects.create(name="Business Central", kind="business_central", role="erp", health="ok")
    extra = expense_report(lines=[expense_line(amount=Decimal("50.00"))])
    for doc in [report, extra, *Document.objects.filter(entity=de)]:
        OutboundWrite.objects.create(
            connection=erp, document=doc, action="post", idempotency_key=f"k{doc.pk}", payload={}
        )
    record_failure(erp, TransientError("connection refused"))
    page.goto(f"{live_server.url}/documents/{report.pk}/")
    shot(page, "held-by")
    page.locator("[data-testid=held-by] a", has_text="Business Central is not answering").click()
    page.locator("[data-testid=held-documents]").wait_for()
    assert page.locator("[data-testid=held-documents] tbody tr").count() == 4
    assert "262.40 USD" in page.locator("[data-testid=incident-holdings]").inner_text()
    assert "900.00 EUR" in page.locator("[data-testid=incident-holdings]").inner_text()
    shot(page, "incident")
