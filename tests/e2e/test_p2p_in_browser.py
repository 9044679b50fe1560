"""Procure-to-pay in Chromium: an analyst accepts a price variance (a real worker posts the invoice),
and an admin changes an approval threshold."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from sync.jobs import run_job
from sync.models import SyncRun
from tests.conftest import SMALL_WORLD, SandboxProcess, wait_until
from tests.support.browser import login
from tests.support.pipeline import drain_outbox
from tests.support.sandboxes import CREDS
from workbench.models import ApprovalRule, Connection, ExceptionItem, LegalEntity, MatchTolerance

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def erp_and_procurement(tmp_path):
    started = []
    try:
        started.append(SandboxProcess("business_central", tmp_path, **SMALL_WORLD))
        started.append(SandboxProcess("coupa", tmp_path, **SMALL_WORLD))
        erp = Connection.objects.create(
            name="Business Central (ERP)",
            kind="business_central",
            role="erp",
            config={"base_url": started[0].url, "environment": "sandbox", **CREDS},
        )
        coupa = Connection.objects.create(
            name="Coupa", kind="coupa", role="procurement", config={"base_url": started[1].url, **CREDS}
        )
        yield erp, coupa, started
    finally:
        for s in started:
            s.stop()


def test_analyst_accepts_a_price_variance_and_the_invoice_is_posted(
    live_server, page, erp_and_procurement, worker_factory, analyst
):
    erp, coupa, (erp_box, coupa_box) = erp_and_procurement
    for conn, job in ((erp, "master_data"), (coupa, "procurement_pull"), (erp, "posting_status")):
        assert run_job(SyncRun.objects.create(connection=conn, job=job)).status == "succeeded"
    drain_outbox()
    MatchTolerance.objects.create(
        entity=None, price_pct=Decimal("2"), amount_abs=Decimal("0"), accept_limit=Decimal("100000")
    )
    item = next(
        i
        for i in ExceptionItem.objects.filter(code="PRICE_VARIANCE", status="open")
        if i.document.exceptions.filter(status="open").count() == 1
    )
    invoice = item.document
    worker_factory("w1")

    login(page, live_server.url)
    page.select_option("select[name=code]", "PRICE_VARIANCE")
    page.wait_for_url(re.compile(r".*code=PRICE_VARIANCE.*"))
    page.locator(f"tr[data-item='{item.pk}'] a").first.click()
    page.wait_for_url(re.compile(rf".*/items/{item.pk}/"))
    table = page.locator("[data-testid=match-table]")
    assert table.locator("tr.flagged [data-testid=invoice-price]").count() == 1  # the offending price is marked
    assert "Unit price" in page.locator("[data-testid=message]").inner_text() or "price" in item.message.lower()
    page.fill("[data-testid=accept-reason]", "Supplier's 2026 price list; buyer confirmed by e-mail")
    url_before = page.url
    page.click("text=Accept variance")
    page.locator("[data-testid=item-status]", has_text="Overridden").wait_for()
    # no reload: the progress panel follows the posting until the ERP number arrives
    page.locator("[data-testid=erp-number]").wait_for(timeout=60_000)
    assert page.url == url_before
    invoice.refresh_from_db()
    assert invoice.financial_status == "ready_for_payment"
    assert page.locator("[data-testid=erp-number]").inner_text() == invoice.erp_document_number
    assert erp_box.get("/sandbox/stats")["invoices"].get("Open", 0) >= 1
    history = page.locator(".history").inner_text()
    assert "Supplier's 2026 price list" in history and "analyst" in history


def test_admin_changes_an_approval_threshold(live_server, page, admin_user):
    entity = LegalEntity.objects.create(code="NW-US", name="Northwind Traders Inc.", currency="USD")
    rule = ApprovalRule.objects.create(entity=entity, min_amount=Decimal("10000"), levels=2)
    login(page, live_server.url, "admin", "admin")
    page.click("text=Settings")
    page.wait_for_url(re.compile(r".*/p2p/settings/"))
    page.fill(f"[data-testid=min-amount-{rule.pk}]", "5000")
    page.fill(f"[data-testid=levels-{rule.pk}]", "3")
    page.click(f"[data-testid=save-rule-{rule.pk}]")
    page.locator("#toasts", has_text="needs 3 approver(s)").wait_for()
    wait_until(lambda: ApprovalRule.objects.get(pk=rule.pk).levels == 3, 10, message="the rule to be saved")
    rule.refresh_from_db()
    assert rule.min_amount == Decimal("5000") and rule.updated_by == admin_user
    # the table shows who changed it, without a page reload
    assert "admin" in page.locator(f"tr[data-rule='{rule.pk}']").inner_text()
    page.reload()
    assert page.input_value(f"[data-testid=min-amount-{rule.pk}]") == "5000.00"
