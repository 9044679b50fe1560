"""KPI dashboard and /api/kpis/: numbers checked against a small world whose answers are worked out by hand.

"Now" is Wednesday 25 November 2026, 12:00 UTC; the window is the 12 weeks from Monday 7 September.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine

from tests.conftest import make_person
from workbench.models import Document, ExceptionItem, LegalEntity
from workbench.selectors.kpis import KpiFilters, business_age_q, earliest_date_with_age_at_most, kpis_get
from workbench.services.calendars import business_calendar_save

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
W46, W47, W48 = date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23)


def at(day: int, hour: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def _doc(name, entity, created, *, source="concur", approved=None, posted=None):
    doc = Document.objects.create(
        source_system=source,
        source_id=name,
        number=name,
        entity=entity,
        entity_code=entity.code,
        currency=entity.currency,
        total=Decimal("100"),
        approved_at=approved,
        posted_at=posted,
        financial_status="posted" if posted else "not_posted",
    )
    Document.objects.filter(pk=doc.pk).update(created_at=created)  # auto_now_add: set the arrival by hand
    return doc


def _item(name, *, doc=None, entity, opened, code="MISSING_COST_CENTER", status="open", resolved=None,
          amount="0", currency=None, team="finance-ops", kind="business"):  # fmt: skip
    return ExceptionItem.objects.create(
        fingerprint=name,
        code=code,
        category="technical" if kind == "technical" else "master_data",
        kind=kind,
        status=status,
        message=name,
        document=doc,
        entity=entity,
        amount_at_risk=Decimal(amount),
        currency=currency or entity.currency,
        owner_team=team,
        opened_at=opened,
        sla_due_at=opened + timedelta(days=2),
        resolved_at=resolved,
    )


@pytest.fixture
def world(db):
    us = LegalEntity.objects.create(code="NW-US", name="Northwind US", currency="USD")
    de = LegalEntity.objects.create(code="NW-DE", name="Northwind DE", currency="EUR")
    d0 = _doc("D0", us, at(3, 9, month=8))  # arrived before the window
    _doc("D1", us, at(16, 10), approved=at(16, 10), posted=at(16, 12))  # lag 2 h, clean
    d2 = _doc("D2", us, at(17, 8), approved=at(17, 8), posted=at(17, 12))  # lag 4 h, had I1
    _doc("D3", us, at(18), approved=at(18), posted=at(18, 10))  # lag 10 h, clean
    d4 = _doc("D4", de, at(18, 9), source="coupa")  # not posted; I2, I7
    d5 = _doc("D5", us, at(23, 9))  # not posted; I3, I4
    _doc("D6", us, at(24), approved=at(24), posted=at(24, 20))  # lag 20 h, clean
    items = {
        "I0": _item("I0", doc=d0, entity=us, opened=at(3, 9, month=8), amount="100"),
        "I1": _item("I1", doc=d2, entity=us, opened=at(17, 9), status="resolved", resolved=at(17, 21), amount="20"),
        "I2": _item("I2", doc=d4, entity=de, opened=at(18, 10), status="waiting", amount="250"),
        "I3": _item("I3", doc=d5, entity=us, opened=at(23, 10), status="in_progress", amount="1000"),
        "I4": _item("I4", doc=d5, entity=us, opened=at(24, 10), amount="50"),
        "I5": _item("I5", entity=us, opened=at(25, 8), code="CONNECTION_DOWN", kind="technical", team="integration"),
        "I6": _item(
            "I6",
            doc=d0,
            entity=us,
            opened=at(10, 9),
            code="CLOSED_PERIOD",
            status="resolved",
            resolved=at(19, 9),
            amount="500",
            team="ap",
        ),  # fmt: skip
        "I7": _item("I7", doc=d4, entity=de, opened=at(18, 11), status="overridden", resolved=at(19, 11), amount="70"),
        "I8": _item("I8", entity=us, opened=at(13, 9), code="CONNECTION_DOWN", kind="technical", team="integration"),
    }
    return {"us": us, "de": de, "items": items}


def _point(trend, week):
    return next(p for p in trend if p["week"] == week)


@pytest.fixture
def controller(db):
    return make_person("controller", "Finance managers")


def test_business_day_age_counts_monday_to_friday_only():
    monday = date(2026, 11, 23)
    assert earliest_date_with_age_at_most(monday, 0) == monday
    assert earliest_date_with_age_at_most(monday, 1) == date(2026, 11, 20)  # opened Friday: one day old on Monday
    assert earliest_date_with_age_at_most(monday, 5) == date(2026, 11, 16)


def test_a_public_holiday_does_not_age_an_item_of_an_entity_whose_calendar_has_it(db):
    us = LegalEntity.objects.create(code="NW-US", name="Northwind US", currency="USD")
    de = LegalEntity.objects.create(code="NW-DE", name="Northwind DE", currency="EUR")
    business_calendar_save(
        entity=us, actor=None, time_zone="America/New_York", weekdays=[0, 1, 2, 3, 4], work_start=time(9),
        work_end=time(17), country="US",
    )  # fmt: skip
    # Both opened on Wednesday before Thanksgiving; on Friday the US one is one business day old
    # (Thursday was a holiday there), the German one (default calendar, Mon-Fri) two.
    us_item = _item("US", entity=us, opened=at(25, 14))
    de_item = _item("DE", entity=de, opened=at(25, 14))
    friday = at(27, 15)
    young = ExceptionItem.objects.filter(business_age_q("bd0-1", friday))
    older = ExceptionItem.objects.filter(business_age_q("bd2-5", friday))
    assert (list(young), list(older)) == ([us_item], [de_item])


def test_the_numbers_match_the_hand_worked_answers(world, controller):
    with time_machine.travel(NOW, tick=False):
        k = kpis_get(user=controller)

    assert k["window"]["weeks"][0] == date(2026, 9, 7) and k["window"]["weeks"][-1] == W48
    # 6 items raised on documents (I1-I4, I6, I7; I0 before the window, I5 and I8 on no document) per 6 documents.
    rate = k["exception_rate"]
    assert (rate["items"], rate["documents"], rate["per_100"]) == (6, 6, Decimal("100.0"))
    assert _point(rate["trend"], W46) == {"week": W46, "documents": 0, "items": 1, "per_100": None}
    assert _point(rate["trend"], W47)["per_100"] == Decimal("75.0")  # I1, I2, I7 on D1-D4
    assert _point(rate["trend"], W48)["per_100"] == Decimal("100.0")  # I3, I4 on D5, D6
    # Posted: D1, D2, D3, D6; only D2 ever had an item.
    ftr = k["first_time_right"]
    assert (ftr["posted"], ftr["clean"], ftr["percent"]) == (4, 3, Decimal("75.0"))
    assert _point(ftr["trend"], W47)["percent"] == Decimal("66.7")
    # Lags 2, 4, 10, 20 h: p50 between 4 and 10, p90 at 70 % of the way from 10 to 20.
    lag = k["posting_lag"]
    assert (lag["posted"], lag["p50_hours"], lag["p90_hours"]) == (4, Decimal("7.0"), Decimal("17.0"))
    assert _point(lag["trend"], W47) == {
        "week": W47,
        "posted": 3,
        "p50_hours": Decimal("4.0"),
        "p90_hours": Decimal("8.8"),
    }
    # Resolved: I1 in 12 h, I6 in 216 h; the overridden I7 does not count.
    ttr = k["time_to_resolve"]
    assert (ttr["resolved"], ttr["mean_hours"]) == (2, Decimal("114.0"))
    assert ttr["by_code"] == [
        {"code": "CLOSED_PERIOD", "resolved": 1, "mean_hours": Decimal("216.0")},
        {"code": "MISSING_COST_CENTER", "resolved": 1, "mean_hours": Decimal("12.0")},
    ]
    assert [(r["team"], r["mean_hours"]) for r in ttr["by_team"]] == [
        ("ap", Decimal("216.0")),
        ("finance-ops", Decimal("12.0")),
    ]
    assert _point(ttr["trend"], W47)["resolved"] == 2
    # Active now: I4, I5 (0-1 business days), I2, I3 (2-5), I8 (8), I0 (months).
    backlog = k["backlog"]
    assert [(b["key"], b["count"]) for b in backlog["buckets"]] == [
        ("bd0-1", 2),
        ("bd2-5", 2),
        ("bd6-10", 1),
        ("bd10+", 1),
    ]
    assert backlog["total"] == 6
    assert [p["count"] for p in backlog["trend"]][-4:] == [1, 3, 3, 6]  # W45 end: I0; W46: +I6 +I8; W47: I0 I2 I8
    # Per entity, in its own currency.
    money = {(r["entity"], r["currency"]): r for r in k["money_at_risk"]["rows"]}
    assert set(money) == {("NW-DE", "EUR"), ("NW-US", "USD")}
    assert (money["NW-US", "USD"]["amount"], money["NW-US", "USD"]["items"]) == (Decimal("1150.00"), 5)
    assert money["NW-DE", "EUR"]["amount"] == Decimal("250.00")
    assert _point(money["NW-US", "USD"]["trend"], W46)["amount"] == Decimal("600.00")  # I0 + I6 (still open then)
    assert _point(money["NW-DE", "EUR"]["trend"], W47)["amount"] == Decimal("250.00")  # I7 overridden by then


def test_filters_narrow_every_number(world, controller):
    with time_machine.travel(NOW, tick=False):
        coupa = kpis_get(user=controller, filters=KpiFilters(source_system="coupa"))
        closed = kpis_get(user=controller, filters=KpiFilters(code="CLOSED_PERIOD"))
        de = kpis_get(user=controller, filters=KpiFilters(entity=world["de"]))
    assert (coupa["exception_rate"]["documents"], coupa["exception_rate"]["items"]) == (1, 2)
    assert coupa["backlog"]["total"] == 1 and coupa["first_time_right"]["posted"] == 0
    # A code narrows the items: no posted document had a CLOSED_PERIOD item.
    assert closed["first_time_right"]["percent"] == Decimal("100.0")
    assert closed["time_to_resolve"]["by_code"] == [
        {"code": "CLOSED_PERIOD", "resolved": 1, "mean_hours": Decimal("216.0")}
    ]
    assert closed["backlog"]["total"] == 0
    assert [r["entity"] for r in de["money_at_risk"]["rows"]] == ["NW-DE"]


def test_the_api_and_the_dashboard_show_the_same_numbers(world, client, controller):
    client.force_login(controller)
    with time_machine.travel(NOW, tick=False):
        api = client.get("/api/kpis/").json()
        page = client.get("/dashboard/").content.decode()
    assert api["exception_rate"]["per_100"] == 100.0
    assert api["posting_lag"]["p50_hours"] == 7.0 and api["posting_lag"]["p90_hours"] == 17.0
    assert {(r["entity"], r["currency"], r["amount"]) for r in api["money_at_risk"]["rows"]} == {
        ("NW-DE", "EUR", "250.0000"),
        ("NW-US", "USD", "1150.0000"),
    }
    assert f'data-testid="kpi-exception-rate" data-value="{api["exception_rate"]["per_100"]}"' in page
    assert f'data-testid="kpi-first-time-right" data-value="{api["first_time_right"]["percent"]}"' in page
    assert f'data-p50="{api["posting_lag"]["p50_hours"]}" data-p90="{api["posting_lag"]["p90_hours"]}"' in page
    assert f'data-testid="kpi-time-to-resolve" data-value="{api["time_to_resolve"]["mean_hours"]}"' in page
    assert f'data-testid="kpi-backlog" data-value="{api["backlog"]["total"]}"' in page
    assert "1,150.00 USD" in page and "250.00 EUR" in page
    # The exact definition of the exception rate is on the page.
    assert "per 100 documents that arrived in the workbench" in page


def test_a_one_entity_person_sees_only_their_entity(world, client):
    client.force_login(make_person("analyst.de", "Finance analysts", ["NW-DE"]))
    with time_machine.travel(NOW, tick=False):
        api = client.get("/api/kpis/").json()
        page = client.get("/dashboard/").content.decode()
        refused = client.get("/api/kpis/?entity=NW-US")
    assert (api["exception_rate"]["documents"], api["exception_rate"]["items"]) == (1, 2)
    assert api["backlog"]["total"] == 1 and api["first_time_right"]["posted"] == 0
    assert [(r["entity"], r["currency"]) for r in api["money_at_risk"]["rows"]] == [("NW-DE", "EUR")]
    assert "NW-US" not in page and "USD" not in page
    assert refused.status_code == 400  # not one of theirs: refused, not silently ignored


def _links(page: str, testid: str) -> dict[str, str]:
    found = re.findall(rf'<a href="([^"]+)" data-testid="{testid}" data-label="([^"]*)"', page)
    return {label: href.replace("&amp;", "&") for href, label in found}


def _queue_ids(client, href: str) -> set[int]:
    body = client.get(href).content.decode()
    return {int(pk) for pk in re.findall(r'href="/items/(\d+)/"', body)}


def test_every_bar_opens_the_queue_filtered_to_exactly_its_items(world, client, controller):
    client.force_login(controller)
    items = {k: v.pk for k, v in world["items"].items()}
    with time_machine.travel(NOW, tick=False):
        page = client.get("/dashboard/").content.decode()
        buckets = _links(page, "backlog-bar")
        assert _queue_ids(client, buckets["2–5"]) == {items["I2"], items["I3"]}
        assert _queue_ids(client, buckets["0–1"]) == {items["I4"], items["I5"]}
        assert _queue_ids(client, buckets["6–10"]) == {items["I8"]}
        assert _queue_ids(client, buckets["Over 10"]) == {items["I0"]}
        by_code = _links(page, "ttr-code-bar")
        assert _queue_ids(client, by_code["CLOSED_PERIOD"]) == {items["I6"]}
        by_team = _links(page, "ttr-team-bar")
        assert _queue_ids(client, by_team["finance-ops"]) == {items["I1"]}
        money = _links(page, "money-EUR-bar")
        assert _queue_ids(client, money["NW-DE"]) == {items["I2"]}
        # A past week's backlog point: the items active at the end of that week.
        backlog_week = _links(page, "backlog-trend-point")
        assert _queue_ids(client, backlog_week["16 Nov"]) == {items["I0"], items["I2"], items["I8"]}
        # The time-to-resolve point of a week: the items resolved in it.
        ttr_week = _links(page, "ttr-trend-point")
        assert _queue_ids(client, ttr_week["16 Nov"]) == {items["I1"], items["I6"]}
        # The exception-rate point of a week: the items raised in it.
        rate_week = _links(page, "rate-trend-point")
        assert _queue_ids(client, rate_week["16 Nov"]) == {items["I1"], items["I2"], items["I7"]}
        # With a filter, the links keep it.
        filtered = client.get("/dashboard/?source=coupa").content.decode()
        assert _queue_ids(client, _links(filtered, "backlog-bar")["2–5"]) == {items["I2"]}


def test_the_htmx_filter_answers_with_the_results_only(world, client, controller):
    client.force_login(controller)
    with time_machine.travel(NOW, tick=False):
        response = client.get("/dashboard/?entity=NW-DE", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="kpi-results"')
    assert "250.00 EUR" in body and "USD" not in body


@pytest.mark.parametrize(
    "query",
    ["entity=NOPE", "code=NOT_A_CODE", "code=" + "x" * 10_000_000, "source=" + "é" * 5000],
)
def test_hostile_filters_get_a_clear_answer(world, client, controller, query):
    client.force_login(controller)
    api = client.get(f"/api/kpis/?{query}")
    page = client.get(f"/dashboard/?{query}")
    assert api.status_code == 400 and len(api.content) < 2000
    assert "not one of" in api.json()["detail"] or "valid choice" in api.json()["detail"]
    assert page.status_code == 200 and 'data-testid="kpi-errors"' in page.content.decode()
    assert "x" * 100 not in page.content.decode()  # the refused value is not echoed


def test_a_nul_byte_is_taken_out_before_the_filters_see_it(world, client, controller):
    client.force_login(controller)
    with time_machine.travel(NOW, tick=False):
        assert client.get("/api/kpis/?source=coupa%00").json()["filters"]["source_system"] == "coupa"


@pytest.mark.parametrize(
    "query",
    [
        "week=2026-W99",
        "week=%00",
        "resolved_week=" + "9" * 5000,
        "week=9999-W52",
        "active_at=9999-12-31",
        "active_at=x",
    ],
)
def test_the_queue_refuses_odd_kpi_parameters_without_a_500(world, client, controller, query):
    client.force_login(controller)
    assert client.get(f"/queue/?{query}").status_code == 200
    assert client.get(f"/api/exceptions/?{query}").status_code in (200, 400)


def test_the_api_is_in_the_openapi_schema(client, controller):
    client.force_login(controller)
    schema = client.get("/api/schema/", headers={"Accept": "application/json"}).content.decode()
    assert "/api/kpis/" in schema and "Kpis" in schema


def test_the_nav_links_the_dashboard(client, controller):
    client.force_login(controller)
    assert 'href="/dashboard/"' in client.get("/queue/").content.decode()


def test_the_queue_shows_and_keeps_a_filter_that_came_from_the_dashboard(world, client, controller):
    client.force_login(controller)
    with time_machine.travel(NOW, tick=False):
        body = client.get("/queue/?source=coupa&status=&team=finance-ops").content.decode()
    assert 'data-testid="chip-source"' in body and '<input type="hidden" name="source" value="coupa">' in body
    assert re.search(r'href="\?status=&amp;team=finance-ops" title="Remove this filter"', body)
    items = world["items"]
    assert {int(pk) for pk in re.findall(r'data-item="(\d+)"', body)} == {items["I2"].pk, items["I7"].pk}


def test_an_engineers_link_opens_all_its_items_not_only_technical_ones(world, client):
    client.force_login(make_person("eng", "Integration engineers"))
    items = world["items"]
    with time_machine.travel(NOW, tick=False):
        page = client.get("/dashboard/").content.decode()
        assert _queue_ids(client, _links(page, "backlog-bar")["0–1"]) == {items["I4"].pk, items["I5"].pk}
