"""Keyboard shortcuts in Chromium: walk the queue, tick, open, walk items in the same order, help with "?"."""

import re

import pytest

from tests.factories import expense_line, expense_report, master_data
from tests.support.browser import login
from workbench.models import ExceptionItem
from workbench.services.validation import documents_validate

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_an_analyst_works_the_queue_from_the_keyboard(live_server, page, analyst):
    master_data()
    documents_validate(documents=[expense_report(lines=[expense_line(cost_center="")]) for _ in range(3)])
    login(page, live_server.url)
    page.goto(f"{live_server.url}/queue/?code=MISSING_COST_CENTER")
    rows = page.locator("table.queue tbody tr[data-item]")
    order = [rows.nth(i).get_attribute("data-item") for i in range(rows.count())]
    assert len(order) == 3

    page.locator("[data-testid=kb-hint]").click()  # the visible "?"
    assert "assign the row to me" in page.locator("[data-testid=kb-help]").inner_text()
    page.keyboard.press("Escape")
    assert page.locator("[data-testid=kb-help]").is_hidden()

    page.fill("input[name=q]", "j")  # typing in a field is typing, not a shortcut
    assert page.locator("tr.kb-current").count() == 0
    page.fill("input[name=q]", "")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.locator("#results table.queue").wait_for()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    assert page.locator("tr.kb-current").get_attribute("data-item") == order[1]
    page.keyboard.press("x")
    assert page.locator(f"tr[data-item='{order[1]}'] input[name=item]").is_checked()
    page.keyboard.press("a")
    page.locator("#toasts", has_text="Assigned to analyst").wait_for()
    assert ExceptionItem.objects.get(pk=order[1]).assignee == analyst

    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/items/{order[1]}/\?.*code=MISSING_COST_CENTER.*pos=1"))
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf".*/items/{order[2]}/\?.*pos=2"))
    page.keyboard.press("k")
    page.wait_for_url(re.compile(rf".*/items/{order[1]}/\?.*pos=1"))
    page.keyboard.press("f")
    assert page.evaluate("document.activeElement.closest('section.fix') !== null")
    page.keyboard.press("?")  # focus is in the fix form now: typing there, not a shortcut
    assert page.locator("[data-testid=kb-help]").count() == 0
    page.locator("h1").click()
    page.keyboard.press("?")
    assert "go to the fix form" in page.locator("[data-testid=kb-help]").inner_text()
