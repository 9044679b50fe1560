"""The queue "By root cause": one row per shared cause, with its items, money and the one fix."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import expense_line, expense_report, master_data
from workbench.models import ExceptionGroup, ExceptionItem
from workbench.services.exception_items import exception_item_raise, exception_item_transition
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def report(amount, **kw):
    line = {k: kw.pop(k) for k in ["cost_center", "date", "tax_code"] if k in kw}
    if "currency" in kw:
        line["currency"] = kw["currency"]
    return expense_report(lines=[expense_line(amount=Decimal(amount), **line)], **kw)


@pytest.fixture
def causes(clock):
    """Three shared causes and one item with none, raised on different days through the rules."""
    master_data()
    master_data("NW-DE", "EUR")
    # The oldest: a tax code NW-DE's ERP doesn't know (48 business hours of SLA: late).
    clock.move_to(NOW - timedelta(days=10))
    documents_validate(documents=[report("80.00", entity="NW-DE", currency="EUR", tax_code="VAT16")])
    clock.move_to(NOW - timedelta(days=3))  # lines dated in September, closed in the ERP (24 h SLA: now late)
    documents_validate(documents=[report("1000.00", date="2026-09-03"), report("500.00", date="2026-09-14")])
    clock.move_to(NOW - timedelta(hours=2))  # an unknown cost center, one report of them in euros
    documents_validate(
        documents=[
            report("100.00", cost_center="SALE"),
            report("200.00", cost_center="SALE"),
            report("50.00", cost_center="SALE", currency="EUR"),
        ]
    )
    clean = report("212.40")
    documents_validate(documents=[clean])
    exception_item_raise(
        code="ERP_REJECTED", message="The ERP refused the posting.", fp=f"ERP_REJECTED:doc{clean.pk}", document=clean
    )
    clock.move_to(NOW)
    return {g.code: g for g in ExceptionGroup.objects.all()}


def groups_page(client, **params):
    response = client.get(reverse("queue:list"), {"view": "groups", **params})
    assert response.status_code == 200
    return response.content.decode()


def rows(html):
    """What each root-cause row says, in order: code, items, money, past SLA."""
    found = []
    for row in re.findall(r'<tr data-group="\d+">(.*?)</tr>', html, re.S):
        code = re.search(r'<span class="badge[^"]*">(\w+)</span>', row).group(1)
        count = int(re.search(r'data-testid="group-count">(\d+)<', row).group(1))
        overdue = int(re.search(r'data-testid="group-overdue">(\d+)<', row).group(1))
        money = re.findall(
            r"<div>([\d,.]+ [A-Z]{3})</div>", re.search(r'data-testid="group-money">(.*?)</td>', row, re.S).group(1)
        )
        found.append((code, count, money, overdue))
    return found


def test_it_lists_each_root_cause_with_its_items_and_money_per_currency_largest_first(analyst_client, causes):
    html = groups_page(analyst_client)
    assert rows(html) == [
        ("CLOSED_PERIOD", 2, ["1,500.00 USD"], 2),
        ("UNKNOWN_COST_CENTER", 3, ["50.00 EUR", "300.00 USD"], 0),
        ("INVALID_TAX_CODE", 1, ["80.00 EUR"], 1),
    ]
    assert causes["CLOSED_PERIOD"].title in html and causes["UNKNOWN_COST_CENTER"].title in html
    assert "NW-DE" in html and "10d 0h" in html  # entity and the oldest item's age
    assert "<html" in html and 'name="view" value="groups" checked' in html  # a full page, no JS needed


def test_it_summarises_items_without_a_shared_cause_in_one_row(analyst_client, causes):
    html = groups_page(analyst_client)
    ungrouped = re.search(r'<tr class="ungrouped" data-testid="ungrouped">(.*?)</tr>', html, re.S).group(1)
    assert "No shared root cause" in ungrouped and "212.40 USD" in ungrouped and ">1<" in ungrouped
    link = unescape(re.search(r'href="([^"]+)" data-testid="show-ungrouped">Show items', ungrouped).group(1))
    assert "view=" not in link and "status=active" in link and "group=none" in link
    # the link lists exactly that one item, under a chip that says what it shows
    html = analyst_client.get(link).content.decode()
    assert len(re.findall(r"<tr[^>]*data-item=", html)) == 1 and "212.40" in html
    assert "Root cause: none shared" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": "policy"}, [("CLOSED_PERIOD", 2, ["1,500.00 USD"], 2)]),
        ({"category": "master_data", "entity": "NW-US"}, [("UNKNOWN_COST_CENTER", 3, ["50.00 EUR", "300.00 USD"], 0)]),
        ({"entity": "NW-DE"}, [("INVALID_TAX_CODE", 1, ["80.00 EUR"], 1)]),
        ({"q": "2026-09-14"}, [("CLOSED_PERIOD", 1, ["500.00 USD"], 1)]),
    ],
)
def test_filters_change_the_numbers(analyst_client, causes, params, expected):
    assert rows(groups_page(analyst_client, **params)) == expected


def test_status_filter_counts_only_items_in_that_status(analyst_client, analyst, causes):
    item = ExceptionItem.objects.get(code="CLOSED_PERIOD", amount_at_risk=Decimal("1000"))
    exception_item_transition(item=item, to="resolved", actor=analyst)
    assert rows(groups_page(analyst_client))[0] == ("CLOSED_PERIOD", 1, ["500.00 USD"], 1)
    assert rows(groups_page(analyst_client, status="resolved")) == [("CLOSED_PERIOD", 1, ["1,000.00 USD"], 0)]


def test_money_in_different_currencies_is_never_compared(analyst_client, clock):
    """100,000 JPY is not more than 1,000 USD: the order is by what each cause holds in one currency."""
    master_data()
    master_data("NW-DE", "EUR")
    master_data("NW-JP", "JPY")
    documents_validate(
        documents=[
            report("100000", entity="NW-JP", currency="JPY", cost_center="SALE"),
            report("1000.00", cost_center="SALE"),
            report("900.00", entity="NW-DE", currency="EUR", cost_center="SALE"),
            report("800.00", entity="NW-DE", currency="EUR", cost_center="ENGG"),
        ]
    )

    def order(html):
        return [
            re.search(r"<td>([^<]*)</td>", row).group(1).split(": ")[-1]
            for row in re.findall(r'<tr data-group="\d+">(.*?)</tr>', html, re.S)
        ]

    html = groups_page(analyst_client)  # most items are in EUR: the order is in EUR
    assert order(html)[:2] == ["SALE (NW-DE)", "ENGG (NW-DE)"]
    assert 'data-testid="money-currency"' in html and "<strong>EUR</strong>" in html
    html = groups_page(analyst_client, money_currency="JPY")
    assert order(html)[0] == "SALE (NW-JP)"
    html = groups_page(analyst_client, money_currency="USD")
    assert order(html)[0] == "SALE (NW-US)"
    assert 'name="money_currency" value="USD" form="filters"' in html  # a later filter change keeps it
    assert (
        groups_page(analyst_client, money_currency="<b>XXX</b>").count("<strong>EUR</strong>") == 1
    )  # unknown: default


def test_it_sorts_by_number_of_items_or_by_the_oldest(analyst_client, causes):
    assert [r[0] for r in rows(groups_page(analyst_client, group_sort="count"))] == [
        "UNKNOWN_COST_CENTER",
        "CLOSED_PERIOD",
        "INVALID_TAX_CODE",
    ]
    html = groups_page(analyst_client, group_sort="oldest")
    assert [r[0] for r in rows(html)] == ["INVALID_TAX_CODE", "CLOSED_PERIOD", "UNKNOWN_COST_CENTER"]
    assert 'name="group_sort" value="oldest" form="filters"' in html  # a later filter change keeps the order


def test_show_items_lists_that_cause_s_items_with_the_same_filters(analyst_client, causes):
    html = groups_page(analyst_client, entity="NW-US")
    group = causes["UNKNOWN_COST_CENTER"]
    link = unescape(
        re.search(rf'<tr data-group="{group.pk}">.*?href="([^"]+)" data-testid="show-items"', html, re.S).group(1)
    )
    assert "entity=NW-US" in link and "view=" not in link
    items = analyst_client.get(link).content.decode()
    assert 'data-testid="group-chip"' in items and group.title in items
    assert set(re.findall(r'<span class="badge cat-\w+" title="[^"]*">(\w+)</span>', items)) == {"UNKNOWN_COST_CENTER"}
    assert len(re.findall(r"<tr class=\"[^\"]*\" data-item=", items)) == 3


def test_staff_get_one_mapping_rule_for_a_mapping_fixable_cause(client, admin_user, causes):
    client.force_login(admin_user)
    html = groups_page(client)
    fixes = [unescape(u) for u in re.findall(r'href="([^"]+)" data-testid="fix-all"', html)]
    assert len(fixes) == 2  # the unknown cost center and the unknown tax code; a closed period is no mapping
    assert any("field=cost_center" in u and "source_value=SALE" in u for u in fixes)
    assert any("field=tax_code" in u and "source_value=VAT16" in u for u in fixes)
    closed = re.search(rf'<tr data-group="{causes["CLOSED_PERIOD"].pk}">(.*?)</tr>', html, re.S).group(1)
    oldest = ExceptionItem.objects.filter(code="CLOSED_PERIOD").order_by("opened_at", "id").first()
    assert f'href="{reverse("items:detail", args=[oldest.pk])}" data-testid="example"' in closed


def test_analysts_open_an_example_item_instead_of_a_mapping_rule(analyst_client, causes):
    html = groups_page(analyst_client)
    assert 'data-testid="fix-all"' not in html
    assert html.count('data-testid="example"') == 3


def test_htmx_switch_returns_only_the_results_and_updates_the_counts(analyst_client, causes):
    response = analyst_client.get(reverse("queue:list"), {"view": "groups", "entity": "NW-DE"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and 'data-view="groups"' in html
    assert 'id="count-total" hx-swap-oob="true">1<' in html


def test_no_shared_cause_is_a_clear_empty_state(analyst_client, causes):
    html = groups_page(analyst_client, code="ERP_REJECTED")
    assert "No open items share a root cause with these filters." in html
    assert 'data-testid="ungrouped"' in html


def test_odd_parameters_are_never_a_500(analyst_client, causes):
    for params in [
        {"view": HOSTILE},
        {"group_sort": HOSTILE},
        {"group_sort": "garbage"},
        {"page": "999"},
        {"page": "x"},
        {"page": "-1"},
        {"page": "9" * 40},
        {"group": "²"},
        {"entity": "NOPE", "status": "bogus"},
        {"sort": "count"},
    ]:
        response = analyst_client.get(reverse("queue:list"), {"view": "groups", **params})
        html = response.content.decode()
        assert response.status_code == 200 and HOSTILE not in html, params
        if "page" in params or "group_sort" in params:  # the first (only) page, in the default order
            assert [r[0] for r in rows(html)] == ["CLOSED_PERIOD", "UNKNOWN_COST_CENTER", "INVALID_TAX_CODE"], params


def test_it_pages_fifty_causes_with_the_same_number_of_queries(analyst_client, clock):
    master_data()
    documents_validate(documents=[report(f"{i}.00", cost_center=f"X{i:02d}") for i in range(1, 56)])

    def page(n):
        with CaptureQueriesContext(connection) as queries:
            html = groups_page(analyst_client, page=n)
        return html, len(queries)

    first, n1 = page(1)
    second, n2 = page(2)
    assert len(rows(first)) == 50 and len(rows(second)) == 5 and "Page 2 of 2 · 55 root causes" in second
    # 10 for the page, 6 for who is asking: session, user, entity scope, permissions (2), role names;
    # 1 each for the Views menu (saved views), the inbox badge, the business calendars (close risk)
    # and the bulk bar's override reasons. None grows with the rows.
    assert n1 == n2 <= 20
    assert rows(second)[-1] == ("UNKNOWN_COST_CENTER", 1, ["1.00 USD"], 0)


def test_a_group_that_is_not_one_lists_nothing_rather_than_everything(analyst_client, causes):
    for value in ["abc", HOSTILE, "9" * 40, "-1"]:
        response = analyst_client.get(reverse("queue:list"), {"group": value})
        html = response.content.decode()
        assert response.status_code == 200 and HOSTILE not in html
        assert "No exceptions match these filters." in html, value
        assert "is not a known root cause" in html, value  # the chip says why the list is empty
