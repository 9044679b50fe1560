"""A controller opens the KPI dashboard in Chromium, clicks a backlog bar and lands on exactly those items."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support.browser import login
from tests.workbench.test_kpis import _doc, _item
from workbench.models import LegalEntity

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_controller_clicks_a_backlog_bar_and_gets_the_filtered_queue(live_server, page, manager):
    now = timezone.now()
    us = LegalEntity.objects.create(code="NW-US", name="Northwind US", currency="USD")
    de = LegalEntity.objects.create(code="NW-DE", name="Northwind DE", currency="EUR")
    doc = _doc("R-1", us, now - timedelta(days=40))
    old_us = _item("old-us", doc=doc, entity=us, opened=now - timedelta(days=40), amount="900")
    _item("old-de", doc=_doc("R-2", de, now - timedelta(days=40)), entity=de, opened=now - timedelta(days=40))
    _item("new-us", doc=doc, entity=us, opened=now - timedelta(hours=1), amount="10")
    _item("done-us", doc=doc, entity=us, opened=now - timedelta(days=40), status="resolved", resolved=now)

    login(page, live_server.url, "manager", "manager")
    page.click("nav >> text=Dashboard")
    page.wait_for_url(re.compile(r".*/dashboard/$"))
    assert page.locator("[data-testid=kpi-backlog]").get_attribute("data-value") == "3"
    # Narrow to one entity with the filter form (HTMX: the results redraw, the address follows).
    page.select_option("select[name=entity]", "NW-US")
    page.wait_for_url(re.compile(r".*entity=NW-US.*"))
    page.locator("[data-testid=kpi-backlog][data-value='2']").wait_for()
    assert page.locator("[data-testid=money-USD-bar]").get_attribute("data-value") == "910.00"
    assert page.locator("[data-testid=money-EUR]").count() == 0

    page.locator("[data-testid=backlog-bar][data-label='Over 10']").click()
    page.wait_for_url(re.compile(r".*/queue/\?.*age=bd10%2B.*"))
    assert "entity=NW-US" in page.url
    rows = page.locator("table.queue tbody tr[data-item]")
    rows.first.wait_for()
    assert rows.count() == 1
    assert rows.first.get_attribute("data-item") == str(old_us.pk)
    assert page.locator("select[name=age]").input_value() == "bd10+"
