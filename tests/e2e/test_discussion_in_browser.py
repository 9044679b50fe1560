"""Two analysts work together in the browser: a comment with a mention, a watch, the inbox badge."""

import os
import re

import pytest

from tests.conftest import make_person
from tests.factories import expense_line, expense_report, master_data
from tests.support.browser import login
from workbench.models import ExceptionItem
from workbench.services.validation import documents_validate

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SHOTS = os.environ.get("SCREENSHOT_DIR")  # set it to keep screenshots of each step


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def test_a_mention_posted_without_reload_reaches_the_colleagues_inbox(live_server, browser, page, analyst):
    master_data()
    doc = expense_report(lines=[expense_line(cost_center="")])
    documents_validate(documents=[doc])
    item = ExceptionItem.objects.get(document=doc, code="MISSING_COST_CENTER")
    make_person("ben", "Finance analysts")

    login(page, live_server.url)
    page.goto(f"{live_server.url}/items/{item.pk}/")
    url_before = page.url
    page.fill("[data-testid=comment-body]", "@ben can you ask the employee for the <cost center>?")
    page.click("[data-testid=comment-post]")
    page.locator("#toasts .toast", has_text="Comment posted.").wait_for()
    comment = page.locator("[data-testid=comment]").first
    assert "<cost center>" in comment.inner_text() and comment.locator(".mention").inner_text() == "@ben"
    assert page.url == url_before and page.locator("[data-testid=comment-body]").input_value() == ""
    assert "Watching: analyst" in page.locator("[data-testid=watchers]").inner_text()  # commenting watches
    shot(page, "item-discussion")

    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    login(other, live_server.url, "ben", "ben")
    assert other.locator("[data-testid=inbox-badge]").inner_text() == "1"
    other.click("[data-testid=inbox-link]")
    message = other.locator("[data-testid=message]").first
    assert "analyst mentioned you on MISSING_COST_CENTER" in message.inner_text()
    shot(other, "inbox")
    message.locator("[data-testid=mark-read]").click()
    other.locator("[data-testid=message][data-read=true]").wait_for()
    assert other.locator("[data-testid=inbox-badge]").inner_text() == ""  # the badge follows, out of band
    message.locator("[data-testid=message-link]").click()
    other.wait_for_url(re.compile(rf".*/items/{item.pk}/"))
    other.click("[data-testid=watch-button]")
    other.locator("[data-testid=watchers]", has_text="ben").wait_for()
    assert other.locator("[data-testid=watch-button]").inner_text() == "Stop watching"
    # ben would rather have one mail a day
    other.click("[data-testid=inbox-link]")
    other.click("text=E-mail settings")
    other.check("input[value=digest]")
    other.click("text=Save")
    other.locator(".msg", has_text="Saved: Once a day, in a digest.").wait_for()
    assert other.locator("input[value=digest]").is_checked()
    shot(other, "email-settings")
    other.context.close()
