"""Business calendars per entity: business-hour SLAs, the close timetable, close risk in the queue."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from tests.conftest import make_person
from tests.factories import expense_line, expense_report, master_data
from tests.workbench.test_p2p import p2p, stored  # noqa: F401  (the procure-to-pay world)
from workbench.models import AccountingPeriod, ApprovalRule, ExceptionItem, LegalEntity
from workbench.models.calendars import BusinessCalendar, CalendarDay, CloseTimetable
from workbench.services import approvals
from workbench.services.calendars import business_calendar_save, close_timetables_seed
from workbench.services.exception_items import exception_item_raise
from workbench.services.masterdata import masterdata_upsert
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
WEEK = [0, 1, 2, 3, 4]


def _calendar(entity, zone, country, **offsets):
    from datetime import time

    return business_calendar_save(
        entity=entity, actor=None, time_zone=zone, country=country, weekdays=WEEK,
        work_start=time(9), work_end=time(17), **offsets,
    )  # fmt: skip


def _missing_cost_center(entity="NW-US", currency="USD", day="2026-11-05"):
    doc = expense_report(entity=entity, currency=currency, lines=[expense_line(cost_center="", date=day)])
    documents_validate(documents=[doc])
    return ExceptionItem.objects.get(document=doc, code="MISSING_COST_CENTER")


def test_a_48_hour_sla_in_berlin_runs_over_christmas_and_the_weekend():
    _calendar(master_data("NW-DE", "EUR"), "Europe/Berlin", "DE")
    with time_machine.travel(datetime(2026, 12, 23, 15, tzinfo=BERLIN), tick=False):
        item = _missing_cost_center("NW-DE", "EUR", day="2026-12-10")
    # Wed 2 h, Thu 8 h, Fri 25th and the weekend off, Mon-Thu 32 h, New Year's Day off, Mon 6 h.
    assert item.sla_due_at == datetime(2027, 1, 4, 15, tzinfo=BERLIN)


def test_the_same_sla_in_new_york_skips_thanksgiving_not_the_german_holidays():
    _calendar(master_data("NW-US", "USD"), "America/New_York", "US")
    with time_machine.travel(datetime(2026, 11, 25, 16, tzinfo=NEW_YORK), tick=False):
        item = _missing_cost_center()
    assert item.sla_due_at == datetime(2026, 12, 4, 16, tzinfo=NEW_YORK)


def test_items_raised_one_by_one_and_approval_tasks_count_business_hours_too():
    _calendar(master_data("NW-DE", "EUR"), "Europe/Berlin", "DE")
    doc = expense_report(entity="NW-DE", currency="EUR", lines=[expense_line(date="2026-12-10")])
    with time_machine.travel(datetime(2026, 12, 24, 16, tzinfo=BERLIN), tick=False):
        item = exception_item_raise(code="ERP_REJECTED", message="Period closed", fp="t:1", document=doc)
    local = item.sla_due_at.astimezone(BERLIN)
    assert local.date().isoformat() >= "2026-12-28" and 9 <= local.hour <= 17  # not over Christmas
    assert item.close_due_at is not None


def test_an_entity_without_a_calendar_counts_monday_to_friday_nine_to_five_utc():
    master_data()
    with time_machine.travel(datetime(2026, 11, 13, 16, tzinfo=UTC), tick=False):  # a Friday afternoon
        item = _missing_cost_center()
    # Fri 1 h, Mon-Fri 40 h, Mon 7 h.
    assert item.sla_due_at == datetime(2026, 11, 23, 16, tzinfo=UTC)


def test_an_item_carries_the_deadline_of_the_period_its_document_posts_into():
    master_data()
    with time_machine.travel(datetime(2026, 11, 10, 12, tzinfo=UTC), tick=False):
        november = _missing_cost_center(day="2026-11-05")
        december = _missing_cost_center(day="2026-12-10")
        closed_month = _missing_cost_center(day="2026-09-15")  # September is closed: it posts into October
    # Expense cut-off: 1 business day after the period's last working day, at 17:00.
    assert november.close_due_at == datetime(2026, 12, 1, 17, tzinfo=UTC)
    assert december.close_due_at == datetime(2027, 1, 1, 17, tzinfo=UTC)  # no country: New Year's Day works
    assert closed_month.close_due_at == datetime(2026, 11, 2, 17, tzinfo=UTC)


def _queue_ids(client, query=""):
    page = client.get("/queue/" + query).content.decode()
    return [int(i) for i in __import__("re").findall(r'data-item="(\d+)"', page)], page


def test_close_risk_lifts_an_item_to_the_top_as_its_close_date_approaches(client):
    master_data()
    client.force_login(make_person("ana", "Finance analysts"))
    with time_machine.travel(datetime(2026, 11, 9, 10, tzinfo=UTC), tick=False):
        december = _missing_cost_center(day="2026-12-10")  # raised first: its SLA runs out first
    with time_machine.travel(datetime(2026, 11, 10, 10, tzinfo=UTC), tick=False):
        november = _missing_cost_center(day="2026-11-05")
        ids, page = _queue_ids(client)
        assert ids.index(december.pk) < ids.index(november.pk)  # far from the close: SLA order
        assert 'data-testid="close-countdown"' not in page
        assert _queue_ids(client, "?close=risk")[0] == []
    with time_machine.travel(datetime(2026, 11, 27, 10, tzinfo=UTC), tick=False):  # Friday before the cut-off
        ids, page = _queue_ids(client)
        assert ids.index(november.pk) < ids.index(december.pk)
        assert "closes in 4 d 7 h" in page
        assert _queue_ids(client, "?close=risk")[0] == [november.pk]
        api = client.get("/api/exceptions/?close=risk").json()
        assert [r["id"] for r in api["results"]] == [november.pk]
    with time_machine.travel(datetime(2026, 12, 2, 10, tzinfo=UTC), tick=False):  # the cut-off has passed
        ids, page = _queue_ids(client)
        assert ids[0] == november.pk and "period closed" in page
    detail = client.get(f"/items/{november.pk}/").content.decode()
    assert 'data-testid="close-deadline"' in detail and "2026-12-01 17:00" in detail


def test_an_admin_changes_offsets_and_the_items_deadlines_follow(client):
    us = master_data()
    with time_machine.travel(datetime(2026, 11, 10, 12, tzinfo=UTC), tick=False):
        item = _missing_cost_center(day="2026-11-05")
    client.force_login(make_person("root", "Administrators"))
    form = {
        "time_zone": "America/New_York", "country": "US", "subdivision": "", "weekdays": ["0", "1", "2", "3", "4"],
        "work_start": "09:00", "work_end": "17:00", "expense_cutoff_days": "-2", "ap_cutoff_days": "3",
        "close_days": "5",
    }  # fmt: skip
    response = client.post(f"/close/{us.pk}/calendar/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    item.refresh_from_db()
    # Two business days before Monday 30 November, Thanksgiving (Thu 26) off: Wednesday 25th, 17:00 in New York.
    assert item.close_due_at == datetime(2026, 11, 25, 17, tzinfo=NEW_YORK)

    november = AccountingPeriod.objects.get(entity=us, code="2026-11")
    assert client.post(f"/close/periods/{november.pk}/", {"expense_cutoff_days": "4"}).status_code == 302
    item.refresh_from_db()
    assert item.close_due_at == datetime(2026, 12, 4, 17, tzinfo=NEW_YORK)
    assert CloseTimetable.objects.get(period=november).expense_cutoff_days == 4

    assert client.post(f"/close/{us.pk}/days/", {"day": "2026-12-04", "name": "Inventory count"}).status_code == 302
    item.refresh_from_db()
    assert item.close_due_at == datetime(2026, 12, 7, 17, tzinfo=NEW_YORK)  # Friday is now a holiday
    page = client.get(f"/close/{us.pk}/").content.decode()
    assert "Inventory count" in page and "Mon 2026-12-07 17:00" not in page  # shown in UTC: 22:00
    assert "Mon 2026-12-07 22:00" in page


def test_an_analyst_sees_the_timetable_but_cannot_change_it(client):
    us = master_data()
    client.force_login(make_person("ana", "Finance analysts", ["NW-US"]))
    with time_machine.travel(datetime(2026, 11, 27, 10, tzinfo=UTC), tick=False):
        page = client.get("/close/").content.decode()
    assert "NW-US" in page and "Expense cut-off" in page and "in 4 d 7 h" in page
    assert 'data-testid="read-only"' in client.get(f"/close/{us.pk}/").content.decode()
    form = {"time_zone": "UTC", "weekdays": ["0"], "work_start": "09:00", "work_end": "17:00",
            "expense_cutoff_days": "0", "ap_cutoff_days": "0", "close_days": "0"}  # fmt: skip
    assert client.post(f"/close/{us.pk}/calendar/", form).status_code == 403
    assert client.post(f"/close/{us.pk}/days/", {"day": "2026-12-01", "name": "x"}).status_code == 403
    assert not BusinessCalendar.objects.exists() and not CalendarDay.objects.exists()


def test_another_entitys_calendar_does_not_exist_for_you(client):
    master_data()
    de = master_data("NW-DE", "EUR")
    day = CalendarDay.objects.create(entity=de, day="2026-12-24", name="Heiligabend")
    december = AccountingPeriod.objects.get(entity=de, code="2026-12")
    client.force_login(make_person("root.us", "Administrators", ["NW-US"]))
    assert client.get(f"/close/{de.pk}/").status_code == 404
    assert client.post(f"/close/{de.pk}/calendar/", {"time_zone": "UTC"}).status_code == 404
    assert client.post(f"/close/{de.pk}/days/", {"day": "2026-12-01", "name": "x"}).status_code == 404
    assert client.post(f"/close/days/{day.pk}/remove/").status_code == 404
    assert client.post(f"/close/periods/{december.pk}/", {"close_days": "1"}).status_code == 404
    assert "NW-DE" not in client.get("/close/").content.decode()
    assert CalendarDay.objects.filter(pk=day.pk).exists() and not CloseTimetable.objects.filter(close_days=1).exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("time_zone", "../../etc/passwd"),
        ("time_zone", "Europe/\x00Mars"),
        ("time_zone", "x" * 1_000_000),
        ("country", "XX"),
        ("subdivision", "ZZ"),
        ("weekdays", "9"),
        ("work_end", "08:00"),
        ("expense_cutoff_days", str(10**12)),
        ("close_days", "five"),
    ],
)
def test_hostile_calendar_input_gets_words_not_a_500(client, field, value):
    us = master_data()
    client.force_login(make_person("root", "Administrators"))
    form = {"time_zone": "Europe/Berlin", "country": "DE", "subdivision": "BY", "weekdays": ["0", "1"],
            "work_start": "09:00", "work_end": "17:00", "expense_cutoff_days": "1", "ap_cutoff_days": "3",
            "close_days": "5", field: value}  # fmt: skip
    response = client.post(f"/close/{us.pk}/calendar/", form)
    assert response.status_code == 200
    assert 'data-testid="form-error"' in response.content.decode()
    assert not BusinessCalendar.objects.exists()


def test_a_10_mb_field_is_refused_at_the_door(client):
    us = master_data()
    client.force_login(make_person("root", "Administrators"))
    response = client.post(f"/close/{us.pk}/calendar/", {"time_zone": "x" * 10_000_000})
    assert response.status_code == 400 and not BusinessCalendar.objects.exists()


def test_hostile_days_and_overrides_are_refused_with_words(client):
    us = master_data()
    client.force_login(make_person("root", "Administrators"))
    for data in [{"day": "2026-13-45", "name": "x"}, {"day": "2026-12-01", "name": "\x00"}, {"day": "2026-12-01"},
                 {"day": "9999-12-31", "name": "far"}, {"day": "2026-12-01", "name": "y" * 5000}]:  # fmt: skip
        response = client.post(f"/close/{us.pk}/days/", data)
        assert response.status_code == 200 and 'data-testid="form-error"' in response.content.decode(), data
    period = AccountingPeriod.objects.get(entity=us, code="2026-11")
    response = client.post(f"/close/periods/{period.pk}/", {"close_days": "-61"})
    assert response.status_code == 200 and 'data-testid="form-error"' in response.content.decode()
    assert not CalendarDay.objects.exists() and not CloseTimetable.objects.filter(close_days__isnull=False).exists()


def test_every_period_the_erp_brings_gets_its_close_dates():
    master_data()
    us = LegalEntity.objects.get(code="NW-US")
    masterdata_upsert(
        stream="accounting_periods",
        records=[{"entity": "NW-US", "code": "2027-01", "name": "January", "start": "2027-01-01",
                  "end": "2027-01-31", "closed": False}],
    )  # fmt: skip
    assert CloseTimetable.objects.filter(entity=us).count() == AccountingPeriod.objects.filter(entity=us).count() == 5
    january = CloseTimetable.objects.get(period__code="2027-01")
    # Sunday 31 January: the last working day is Friday 29th; +1 Mon, +3 Wed, +5 Fri.
    assert (january.expense_cutoff_at, january.ap_cutoff_at, january.close_at) == (
        datetime(2027, 2, 1, 17, tzinfo=UTC),
        datetime(2027, 2, 3, 17, tzinfo=UTC),
        datetime(2027, 2, 5, 17, tzinfo=UTC),
    )
    assert close_timetables_seed(entity_ids=[us.pk]) == 5  # again: same rows, no duplicates
    assert CloseTimetable.objects.count() == 5


def test_approval_tasks_are_due_in_business_hours(p2p):  # noqa: F811
    """The approval SLA (48 h by default) counts the entity's working hours, Thanksgiving off."""
    _calendar(p2p, "America/New_York", "US")
    ApprovalRule.objects.create(entity=p2p, min_amount=0, levels=2)
    doc = stored()
    with time_machine.travel(datetime(2026, 11, 25, 16, tzinfo=NEW_YORK), tick=False):
        first, second = approvals.requisition_route(document=doc)
    assert first.due_at == datetime(2026, 12, 4, 16, tzinfo=NEW_YORK) and second.due_at is None
    with time_machine.travel(datetime(2026, 12, 4, 16, 30, tzinfo=NEW_YORK), tick=False):  # Friday, after 16:30
        out = approvals.approval_decision_apply(task=first, state="approved", comments="", approver="E0010")
    # Fri 30 min, then Mon-Fri 40 h, Mon 7.5 h: 48 h.
    assert out.next_task.due_at == datetime(2026, 12, 14, 16, 30, tzinfo=NEW_YORK)
