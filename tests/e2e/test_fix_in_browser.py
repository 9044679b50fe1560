"""An analyst fixes an exception in the browser; a real worker re-validates and re-posts it."""

import re

import pytest

from sync.jobs import run_job
from sync.models import SyncRun
from tests.conftest import wait_until
from tests.support.browser import login
from tests.support.pipeline import drain_outbox
from workbench.models import ExceptionItem

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_analyst_picks_a_cost_center_and_the_report_is_posted_without_a_reload(
    live_server, page, sandboxes, connections, worker_factory, analyst
):
    erp, expense = connections
    run_job(SyncRun.objects.create(connection=erp, job="master_data"))
    run_job(SyncRun.objects.create(connection=expense, job="expense_pull"))
    drain_outbox()
    # a report held back by one unknown cost center and nothing else
    item = next(
        i
        for i in ExceptionItem.objects.filter(code="UNKNOWN_COST_CENTER", status="open")
        if i.document.exceptions.filter(status="open").count() == 1
    )
    worker_factory("w1")

    login(page, live_server.url)
    page.select_option("select[name=code]", "UNKNOWN_COST_CENTER")
    page.wait_for_url(re.compile(r".*code=UNKNOWN_COST_CENTER.*"))  # hx-push-url keeps the filter in the address
    row = page.locator(f"tr[data-item='{item.pk}']")
    row.locator("a").first.click()
    page.wait_for_url(re.compile(rf".*/items/{item.pk}/"))
    assert "does not exist in the ERP" in page.locator("[data-testid=message]").inner_text()
    page.select_option("[data-testid=cost-center]", "SALES")
    page.locator("form:has([data-testid=cost-center]) input[name=reason]").fill(
        "Typo in Concur; SALES is the employee's department"
    )
    url_before = page.url
    page.click("text=Apply and re-post")
    # nothing else holds the report: the toast says it goes on to the ERP
    page.locator("#toasts .toast", has_text="Corrected; re-validating and posting").wait_for()
    # no reload: the progress panel polls until the ERP number arrives
    page.locator("[data-testid=erp-number]").wait_for(timeout=60_000)
    assert page.url == url_before
    erp_number = page.locator("[data-testid=erp-number]").inner_text()
    assert page.locator("[data-testid=progress-status]").inner_text() == "resolved"
    assert page.locator("[data-testid=item-status]").inner_text() == "Resolved"
    assert re.match(r"PPI-\d+", erp_number)
    # the document's own block on the left says so too, still without a reload
    page.locator("#doc-facts").get_by_text(erp_number).wait_for(timeout=10_000)
    assert page.locator("#fin-status").inner_text() == "Posted"
    # ...and so do the lines, the trace and the root-cause group, swapped in out of band
    row = page.locator(f"table.lines tr[data-line='{item.line.line_no}']")
    assert "SALES" in row.inner_text() and item.detail["value"] not in row.inner_text().split()
    assert row.locator("td.bad").count() == 0  # the corrected cell is no longer flagged
    trace = page.locator("table.trace").inner_text()
    for event in ("corrected", "revalidated", "posted", erp_number):
        assert event in trace, event
    left = ExceptionItem.objects.filter(group=item.group, status__in=["open", "in_progress", "waiting"]).count()
    stats = page.locator("[data-testid=group-stats]").inner_text()
    assert (f"{left} open item" in stats) if left else ("No open items left" in stats)

    item.refresh_from_db()
    doc = item.document
    doc.refresh_from_db()
    assert doc.financial_status == "posted" and doc.erp_document_number == erp_number
    assert doc.events.filter(action="corrected", actor=analyst).exists()
    # the expense platform now shows the ERP document number
    wait_until(
        lambda: sandboxes["expense"].get(f"/sandbox/reports/{doc.source_id}").get("erpDocumentNumber") == erp_number,
        60,
        message="the write-back to the expense sandbox",
    )
    # who did what is in the item's history, shown on reload
    page.reload()
    assert "analyst" in page.locator("ol.history").inner_text()


def test_run_now_shows_live_progress_and_the_new_run(
    live_server, page, sandboxes, connections, worker_factory, engineer
):
    erp, expense = connections
    worker_factory("w1")
    login(page, live_server.url, "engineer", "engineer")
    page.goto(f"{live_server.url}/sync/")
    row = page.locator("tr[data-job=master_data]")
    assert "never" in row.inner_text()
    row.locator("button", has_text="Run now").click()
    page.locator(".run-progress").first.wait_for()  # the bar appears at once, before the worker is done
    # when the run ends the tables redraw with it: last run by the engineer, records read
    page.locator("tr[data-job=master_data]", has_text="by engineer").wait_for(timeout=60_000)
    row = page.locator("tr[data-job=master_data]")
    assert "succeeded" in row.inner_text()
    read = int(row.locator("td.num").first.inner_text())
    assert read > 100
