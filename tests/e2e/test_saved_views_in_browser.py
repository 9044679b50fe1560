"""Saved views and exports in Chromium: an analyst filters the queue, saves the filters for the team,
a teammate opens the view from the Views menu and downloads the CSV of exactly those rows."""

import csv
import io
import re

import openpyxl
import pytest

from tests.conftest import make_person
from tests.factories import expense_line, expense_report, master_data
from tests.support.browser import login
from workbench.models import ExceptionItem, SavedView
from workbench.services.validation import documents_validate

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_view_saved_for_the_team_opens_for_a_teammate_and_exports_its_rows(live_server, page, browser):
    master_data()
    master_data("NW-DE", "EUR")
    docs = [expense_report(lines=[expense_line(cost_center="")]) for _ in range(2)]
    docs.append(expense_report(entity="NW-DE", currency="EUR", lines=[expense_line(cost_center="", currency="EUR")]))
    docs.append(expense_report(lines=[expense_line(date="2026-09-02")]))  # a closed period: another code
    documents_validate(documents=docs)
    make_person("analyst", "Finance analysts")
    make_person("tom", "Finance analysts")

    login(page, live_server.url)
    page.select_option("select[name=entity]", "NW-US")
    page.wait_for_url(re.compile(r".*entity=NW-US.*"))
    page.select_option("select[name=code]", "MISSING_COST_CENTER")
    page.wait_for_url(re.compile(r".*code=MISSING_COST_CENTER.*"))
    page.locator("table.queue tbody tr").nth(1).wait_for()
    page.click("[data-testid=views-menu] summary")
    page.fill("[data-testid=save-view] input[name=name]", "US cost centers")
    page.select_option("[data-testid=save-view] select[name=shared_with]", "Finance analysts")
    page.screenshot(path="/tmp/saved-views-menu.png")
    page.click("[data-testid=save-view] button")
    page.locator(".msg.success", has_text="Saved the view").wait_for()
    assert SavedView.objects.get().query == "code=MISSING_COST_CENTER&status=active&entity=NW-US"

    teammate = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True).new_page()
    login(teammate, live_server.url, "tom", "tom")
    teammate.click("[data-testid=views-menu] summary")
    teammate.click("[data-testid=saved-views] a:has-text('US cost centers')")
    teammate.wait_for_url(re.compile(r".*entity=NW-US.*"))
    assert teammate.locator("[data-testid=current-view]").inner_text() == "View: US cost centers"
    shown = [int(i) for i in teammate.locator("table.queue tbody tr").evaluate_all("rs => rs.map(r => r.dataset.item)")]
    with teammate.expect_download() as download:
        teammate.click("[data-testid=export-csv]")
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8-sig").read())))
    assert [int(r[0]) for r in rows[1:]] == shown and len(shown) == 2
    assert set(shown) == set(
        ExceptionItem.objects.filter(entity__code="NW-US", code="MISSING_COST_CENTER").values_list("pk", flat=True)
    )
    teammate.screenshot(path="/tmp/saved-views-teammate.png")


def test_a_big_export_runs_on_the_worker_with_a_progress_bar_and_a_download(
    live_server, page, browser, settings, worker_factory
):
    settings.EXPORT_BACKGROUND_ROWS = 2  # four items are "big" here
    master_data()
    documents_validate(documents=[expense_report(lines=[expense_line(cost_center="")]) for _ in range(4)])
    make_person("analyst", "Finance analysts")
    worker_factory("w1")

    login(page, live_server.url)
    page.locator("table.queue tbody tr").nth(3).wait_for()
    shown = [int(i) for i in page.locator("table.queue tbody tr").evaluate_all("rs => rs.map(r => r.dataset.item)")]
    page.click("[data-testid=export-xlsx]")
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    page.locator("[data-testid=job-progress][data-status=done]").wait_for(timeout=60_000)
    assert "4 rows exported" in page.locator("[data-testid=job-message]").inner_text()
    page.screenshot(path="/tmp/export-job.png")
    with page.expect_download() as download:
        page.click("[data-testid=job-download]")
    assert download.value.suggested_filename.startswith("queue-") and download.value.suggested_filename.endswith(
        ".xlsx"
    )
    with open(download.value.path(), "rb") as f:
        sheet = openpyxl.load_workbook(io.BytesIO(f.read())).worksheets[0]
    assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == shown
