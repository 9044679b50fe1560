"""The queue as an analyst uses it in Chromium: filter, tick, assign, with no page reload."""

import re

import pytest

from tests.factories import expense_line, expense_report, master_data
from tests.support.browser import login
from workbench.models import ExceptionItem
from workbench.services.validation import documents_validate

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

HOSTILE = "<script>alert(1)</script>"


def test_filter_tick_and_assign_without_reload(live_server, page, analyst):
    master_data()
    docs = [expense_report(lines=[expense_line(cost_center="")]) for _ in range(3)]
    docs.append(expense_report(lines=[expense_line(date="2026-09-02", description=HOSTILE)], name=HOSTILE))
    documents_validate(documents=docs)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    login(page, live_server.url)
    assert page.locator("#count-total").inner_text() == "4"
    page.locator("label", has_text="Master data").click()
    page.wait_for_url(re.compile(r".*category=master_data.*"))
    page.locator("table.queue tbody tr").nth(2).wait_for()
    assert page.locator("table.queue tbody tr").count() == 3
    page.locator("[data-testid=select-all]").check()
    page.click("text=Apply to selected")
    page.locator("#toasts", has_text="Assigned 3 items to analyst").wait_for()
    page.locator("table.queue tbody tr", has_text="In progress").nth(2).wait_for()  # the table redrew itself
    assert ExceptionItem.objects.filter(assignee=analyst).count() == 3

    page.goto(f"{live_server.url}/queue/?code=CLOSED_PERIOD")
    assert HOSTILE in page.locator("table.queue").inner_text()  # shown as text
    assert not dialogs  # and never run
