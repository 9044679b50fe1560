"""An analyst runs a bulk retry on a filtered set in Chromium and follows it to the end on a real worker."""

import re

import pytest

from tests.factories import expense_line, expense_report, master_data
from tests.support.browser import login
from workbench.models import ExceptionItem, WorkJob
from workbench.services.validation import documents_validate

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_bulk_retry_on_a_filtered_set_runs_in_the_background_with_progress(
    live_server, page, worker_factory, analyst, settings
):
    settings.BULK_INLINE_MAX = 5  # anything bigger goes to the worker
    master_data()
    docs = [expense_report(lines=[expense_line(cost_center="")]) for _ in range(24)]
    docs += [expense_report(lines=[expense_line(date="2026-09-03")]) for _ in range(2)]
    documents_validate(documents=docs)
    targets = set(ExceptionItem.objects.filter(code="MISSING_COST_CENTER").values_list("pk", flat=True))
    others = set(ExceptionItem.objects.exclude(pk__in=targets).values_list("pk", flat=True))
    worker_factory("w1")

    login(page, live_server.url)
    page.select_option("select[name=code]", "MISSING_COST_CENTER")
    page.wait_for_url(re.compile(r".*code=MISSING_COST_CENTER.*"))
    page.locator("#bulk-total", has_text="24").wait_for()  # the bar counts what the filters match
    page.select_option("[data-testid=bulk-action]", "retry")
    page.check("[data-testid=bulk-scope-all]")
    page.click("[data-testid=bulk-preview-button]")
    preview = page.locator("[data-testid=bulk-preview]")
    preview.wait_for()
    assert preview.locator("[data-testid=bulk-changes]").inner_text() == "24"
    assert preview.locator("[data-testid=bulk-skips]").inner_text() == "0"
    assert "runs in the background" in preview.inner_text()
    assert "USD" in preview.locator("[data-testid=bulk-money]").inner_text()

    page.click("[data-testid=bulk-confirm]")
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    bar = page.locator("[data-testid=job-progress]")
    assert bar.get_attribute("data-status") in ("queued", "running", "done")
    page.locator("[data-testid=job-progress][data-status=done]").wait_for(timeout=60_000)
    assert "Retry: 24 items changed." in page.locator("[data-testid=job-message]").inner_text()
    job = WorkJob.objects.get(kind="bulk")
    assert (job.done, job.total) == (24, 24)
    # every targeted item was retried once, through the single action; the others were not touched
    for item in ExceptionItem.objects.filter(pk__in=targets):
        assert item.events.filter(action="retry").count() == 1, item.pk
    assert not ExceptionItem.objects.filter(pk__in=others, events__action="retry").exists()

    page.click("text=Back")
    page.wait_for_url(re.compile(r".*/queue/\?.*code=MISSING_COST_CENTER.*"))
    assert page.locator("select[name=code]").input_value() == "MISSING_COST_CENTER"
