"""An analyst snoozes an item until its period opens; the ERP opens it, the sync runs on a real worker, and
the item wakes (and resolves) on the analyst's page without a reload."""

import re

import pytest
import requests

from sync.jobs import run_job
from sync.models import SyncRun
from tests.support.browser import login
from tests.support.pipeline import drain_outbox
from workbench.models import AccountingPeriod, ExceptionItem

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_analyst_snoozes_until_the_period_opens_and_sees_it_wake(
    live_server, browser, page, sandboxes, connections, worker_factory, analyst, admin_user
):
    erp, expense = connections
    run_job(SyncRun.objects.create(connection=erp, job="master_data"))
    run_job(SyncRun.objects.create(connection=expense, job="expense_pull"))
    drain_outbox()
    item = ExceptionItem.objects.filter(code="CLOSED_PERIOD", status="open", detail__has_key="period").first()
    assert item is not None, "the seeded world has reports dated in a closed period"
    entity = item.entity.code
    period = AccountingPeriod.objects.get(entity=item.entity, code=item.detail["period"])
    worker_factory("w1")

    login(page, live_server.url)
    page.goto(f"{live_server.url}/items/{item.pk}/")
    page.locator("[data-testid=snooze-form] summary").click()
    # The event the item's code suggests is preselected, with what exactly it waits for.
    assert page.input_value("[data-testid=snooze-event]") == "period_open"
    assert page.input_value("[data-testid=snooze-key]") == f"period:{entity}:{period.code}"
    page.fill("[data-testid=snooze-reason]", "The controller reopens it for late claims")
    page.click("[data-testid=snooze-submit]")
    waiting = f"Waiting for period {period.code} of {entity} to open"
    page.locator("#toasts .toast", has_text=waiting).wait_for()
    page.locator("[data-testid=snooze]", has_text=waiting).wait_for()
    assert page.locator("[data-testid=item-status]").inner_text() == "Waiting"
    item_url = page.url

    # The queue's default view no longer shows it; "Snoozed" does, saying what it waits for.
    page.goto(f"{live_server.url}/queue/?code=CLOSED_PERIOD")
    page.locator("table.queue").wait_for()
    assert page.locator(f"tr[data-item='{item.pk}']").count() == 0
    page.goto(f"{live_server.url}/queue/?status=snoozed")
    assert waiting in page.locator(f"tr[data-item='{item.pk}'] [data-testid=waits-for]").inner_text()

    # The period opens in the ERP; an engineer's "Run now" pulls master data on the worker.
    opened = requests.post(
        f"{sandboxes['erp'].url}/sandbox/touch",
        json={"stream": "accounting_periods", "ids": [period.erp_id], "set": {"closed": False, "dateLocked": False}},
        timeout=10,
    )
    assert opened.status_code == 200, opened.text
    page.goto(item_url)
    page.locator("[data-testid=snooze]").wait_for()
    ops = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        admin = ops.new_page()
        login(admin, live_server.url, "admin", "admin")
        admin.goto(f"{live_server.url}/sync/")
        row = admin.locator(f'section[data-connection="{erp.name}"] tr[data-job="master_data"]')
        row.get_by_role("button", name="Run now").click()
        admin.wait_for_selector(".run-progress", timeout=10_000)
    finally:
        ops.close()

    # The analyst's page follows the snoozed item: it wakes, is re-validated and resolves, without a reload.
    page.locator("[data-testid=item-status]", has_text="Resolved").wait_for(timeout=120_000)
    assert page.url == item_url
    assert page.locator("[data-testid=snooze]").count() == 0
    page.reload()
    history = page.locator("ol.history").inner_text()
    assert re.search(rf"woke.*\n?.*Woke: period {period.code} of {entity} is open", history), history
    assert "snoozed" in history and "rule passed" in history
