"""Snooze: set an item aside until a date or a business event; the change that brings the event wakes it."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from sync.tasks import wake_snoozed_task
from tests.conftest import make_person
from tests.factories import expense_line, expense_report, master_data
from workbench import jobs
from workbench.errors import InvalidTransition
from workbench.models import AccountingPeriod, ApprovalDelegation, Connection, Employee, ExceptionItem
from workbench.services.masterdata import masterdata_upsert
from workbench.services.ownership import ownership_set
from workbench.services.revalidation import document_revalidate
from workbench.services.snooze import exception_item_snooze, exception_items_wake, suggested_wait
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def raised(**line) -> ExceptionItem:
    master_data()
    doc = expense_report(lines=[expense_line(**line)])
    documents_validate(documents=[doc])
    return ExceptionItem.objects.get(document=doc)


@pytest.fixture
def closed_period_item():
    return raised(date="2026-09-14")  # September is closed in the factory's books


def period_page(closed: bool) -> list[dict]:
    return [
        {
            "entity": "NW-US",
            "code": "2026-09",
            "name": "September 2026",
            "start": "2026-09-01",
            "end": "2026-09-30",
            "closed": closed,
        }
    ]


def test_a_closed_period_suggests_waiting_for_that_period_to_open(closed_period_item):
    wait = suggested_wait(closed_period_item)
    assert (wait.wait_for, wait.wait_key) == ("period_open", "period:NW-US:2026-09")
    assert wait.label == "period 2026-09 of NW-US to open"


def test_other_codes_suggest_their_own_event():
    master_data()
    tax = raised(tax_code="NOPE")
    assert (suggested_wait(tax).wait_for, suggested_wait(tax).wait_key) == ("master_data_value", "tax_code:NW-US:NOPE")
    doc = expense_report(lines=[expense_line(cost_center="NEWCC")])
    documents_validate(documents=[doc])
    cc = ExceptionItem.objects.get(document=doc, code="UNKNOWN_COST_CENTER")
    assert suggested_wait(cc).label == "cost center NEWCC of NW-US to appear in the ERP"
    gone = expense_report(employee_code="E0002", employee_name="Gone Person")
    documents_validate(documents=[gone])
    inactive = ExceptionItem.objects.get(document=gone, code="INACTIVE_EMPLOYEE")
    assert suggested_wait(inactive).wait_key == "employee:NW-US:E0002"


def test_snoozing_until_the_period_opens_sets_it_aside_and_the_period_opening_wakes_and_resolves_it(
    closed_period_item, analyst, jobs_sent
):
    item = exception_item_snooze(item=closed_period_item, actor=analyst, wait_for="period_open", reason="Reopening Mon")
    item.refresh_from_db()
    assert item.status == "waiting" and item.snoozed
    assert (item.wait_for, item.wait_key) == ("period_open", "period:NW-US:2026-09")
    snoozed = item.events.get(action="snoozed")
    assert snoozed.reason == "Waiting for period 2026-09 of NW-US to open: Reopening Mon" and snoozed.actor == analyst

    # A page that keeps the period closed wakes nothing; the page that opens it does.
    masterdata_upsert(stream="accounting_periods", records=period_page(closed=True))
    item.refresh_from_db()
    assert item.status == "waiting"
    masterdata_upsert(stream="accounting_periods", records=period_page(closed=False))
    item.refresh_from_db()
    assert item.status == "open" and not item.snoozed and item.wait_key == ""
    woke = item.events.get(action="woke")
    assert woke.reason.startswith("Woke: period 2026-09 of NW-US is open") and woke.from_status == "waiting"
    assert (jobs.REVALIDATE_DOCUMENT, {"document_id": item.document_id}) in jobs_sent

    assert document_revalidate(document_id=item.document_id) == "clean"
    item.refresh_from_db()
    assert item.status == "resolved"


def test_an_item_resolved_meanwhile_is_not_reopened_by_the_event(closed_period_item, analyst):
    exception_item_snooze(item=closed_period_item, actor=analyst, wait_for="period_open")
    AccountingPeriod.objects.filter(code="2026-09").update(closed=False)  # fixed another way first
    documents_validate(documents=[closed_period_item.document])
    closed_period_item.refresh_from_db()
    assert closed_period_item.status == "resolved" and not closed_period_item.wait_for

    masterdata_upsert(stream="accounting_periods", records=period_page(closed=False))
    closed_period_item.refresh_from_db()
    assert closed_period_item.status == "resolved"
    assert not closed_period_item.events.filter(action="woke").exists()


def test_a_snoozed_item_keeps_waiting_when_its_document_is_checked_again_and_still_fails(closed_period_item, analyst):
    exception_item_snooze(item=closed_period_item, actor=analyst, wait_for="period_open")
    documents_validate(documents=[closed_period_item.document])
    document_revalidate(document_id=closed_period_item.document_id)
    closed_period_item.refresh_from_db()
    assert closed_period_item.status == "waiting" and closed_period_item.snoozed


def test_a_date_snooze_wakes_by_the_minute_task_once(closed_period_item, analyst, frozen, jobs_sent):
    exception_item_snooze(item=closed_period_item, actor=analyst, until=NOW + timedelta(days=2))
    assert wake_snoozed_task() == 0
    frozen.shift(timedelta(days=2, minutes=1))
    assert wake_snoozed_task() == 1
    assert wake_snoozed_task() == 0  # run twice: nothing left to wake
    closed_period_item.refresh_from_db()
    assert closed_period_item.status == "open" and closed_period_item.snoozed_until is None
    assert closed_period_item.events.get(action="woke").reason.startswith("Woke: the snooze date came (2026-11-22")
    assert (jobs.REVALIDATE_DOCUMENT, {"document_id": closed_period_item.document_id}) in jobs_sent


def test_an_approver_back_from_a_delegation_wakes_their_items(closed_period_item, analyst, frozen):
    ApprovalDelegation.objects.create(
        approver="E0001", delegate="E0002", start=NOW.date(), end=NOW.date() + timedelta(days=3)
    )
    exception_item_snooze(
        item=closed_period_item, actor=analyst, wait_for="approver_back", wait_key="employee:NW-US:E0001"
    )
    assert wake_snoozed_task() == 0  # away today
    frozen.shift(timedelta(days=4))
    assert wake_snoozed_task() == 1
    assert "approver E0001 of NW-US is back" in closed_period_item.events.get(action="woke").reason


def test_an_employee_active_again_wakes_the_items_waiting_for_them(analyst):
    master_data()
    gone = expense_report(employee_code="E0002", employee_name="Gone Person")
    documents_validate(documents=[gone])
    item = ExceptionItem.objects.get(document=gone, code="INACTIVE_EMPLOYEE")
    exception_item_snooze(item=item, actor=analyst, wait_for="master_data_value")
    page = [{"entity": "NW-US", "code": "E0002", "name": "Gone Person", "email": "", "status": "active"}]
    masterdata_upsert(stream="employees", records=page)
    item.refresh_from_db()
    assert item.status == "open" and Employee.objects.get(code="E0002").status == "active"


def test_snoozing_again_changes_the_terms_and_waking_by_hand_ends_it(closed_period_item, analyst):
    exception_item_snooze(item=closed_period_item, actor=analyst, until=NOW + timedelta(days=1))
    exception_item_snooze(item=closed_period_item, actor=analyst, wait_for="period_open")
    closed_period_item.refresh_from_db()
    assert closed_period_item.snoozed_until is None and closed_period_item.wait_for == "period_open"
    assert closed_period_item.events.filter(action="snoozed").count() == 2


@pytest.mark.parametrize(
    "terms, message",
    [
        ({}, "until a date, or until an event"),
        ({"until": NOW - timedelta(minutes=1)}, "in the future"),
        ({"until": NOW + timedelta(days=3650)}, "a year at most"),
        ({"wait_for": "moon_landing"}, "Unknown event"),
        ({"wait_for": "period_open", "wait_key": "period:NW-US:\x002026-09"}, "wait_key must read like period:"),
        ({"wait_for": "period_open", "wait_key": "x" * 10_000_000}, "at most 200"),
        ({"wait_for": "period_open", "wait_key": "supplier:NW-US:V1"}, "names period:"),
        ({"wait_for": "receipt_arrived"}, "Say what exactly"),
        ({"wait_for": "period_open", "reason": "a\x00b"}, "printable text"),
    ],
)
def test_hostile_or_impossible_terms_are_refused_clearly(closed_period_item, analyst, terms, message):
    with pytest.raises(InvalidTransition, match=message):
        exception_item_snooze(item=closed_period_item, actor=analyst, **terms)
    closed_period_item.refresh_from_db()
    assert closed_period_item.status == "open" and not closed_period_item.events.filter(action="snoozed").exists()


def test_only_open_items_are_snoozed(closed_period_item, analyst):
    AccountingPeriod.objects.filter(code="2026-09").update(closed=False)
    documents_validate(documents=[closed_period_item.document])
    closed_period_item.refresh_from_db()
    with pytest.raises(InvalidTransition, match="Only open items"):
        exception_item_snooze(item=closed_period_item, actor=analyst, wait_for="period_open")


def test_waking_many_keys_is_one_lookup(closed_period_item, analyst, django_assert_max_num_queries):
    exception_item_snooze(item=closed_period_item, actor=analyst, wait_for="period_open")
    keys = [f"period:NW-US:{y}-{m:02d}" for y in range(2000, 2030) for m in range(1, 13)]
    with django_assert_max_num_queries(3):  # the lookup, inside its savepoint
        assert exception_items_wake(event="supplier_unblocked", key=keys, cause="test") == 0


# --- screens and API ----------------------------------------------------------------------------------


def test_the_queue_hides_snoozed_items_by_default_and_shows_them_under_snoozed(client, closed_period_item, analyst):
    client.force_login(analyst)
    exception_item_snooze(item=closed_period_item, actor=analyst, wait_for="period_open")
    default = client.get("/queue/").content.decode()
    assert f'data-item="{closed_period_item.pk}"' not in default
    snoozed = client.get("/queue/?status=snoozed").content.decode()
    assert f'data-item="{closed_period_item.pk}"' in snoozed
    assert "Waiting for period 2026-09 of NW-US to open" in snoozed
    assert f'data-item="{closed_period_item.pk}"' in client.get("/queue/?status=waiting").content.decode()
    api = client.get("/api/exceptions/?status=active").json()
    assert closed_period_item.pk not in [i["id"] for i in api["results"]]


def test_the_item_page_offers_the_inferred_wait_then_says_what_it_waits_for_and_wakes_now(
    client, closed_period_item, analyst, jobs_sent
):
    client.force_login(analyst)
    page = client.get(f"/items/{closed_period_item.pk}/").content.decode()
    assert 'value="period_open" selected' in page and 'value="period:NW-US:2026-09"' in page
    assert "Suggested: period 2026-09 of NW-US to open." in page

    resp = client.post(
        f"/items/{closed_period_item.pk}/snooze/",
        {"mode": "event", "wait_for": "period_open", "wait_key": "period:NW-US:2026-09", "reason": "ERP reopens"},
        follow=True,
    )
    page = resp.content.decode()
    assert "Waiting for period 2026-09 of NW-US to open" in page and "(since 2026-11-20 09:00 UTC)" in page
    assert 'data-testid="wake-now"' in page

    page = client.post(f"/items/{closed_period_item.pk}/wake/", follow=True).content.decode()
    closed_period_item.refresh_from_db()
    assert closed_period_item.status == "open"
    assert "Woke: woken by analyst" in closed_period_item.events.get(action="woke").reason
    assert 'data-testid="wake-now"' not in page


def test_the_item_page_refuses_a_past_date_with_a_message(client, closed_period_item, analyst):
    client.force_login(analyst)
    resp = client.post(
        f"/items/{closed_period_item.pk}/snooze/", {"mode": "date", "until": "2026-11-01"}, HTTP_HX_REQUEST="true"
    )
    assert resp.status_code == 200 and "in the future" in resp.headers["HX-Trigger"]
    resp = client.post(
        f"/items/{closed_period_item.pk}/snooze/", {"mode": "date", "until": "2026-13-45"}, HTTP_HX_REQUEST="true"
    )
    assert resp.status_code == 200 and "until:" in resp.headers["HX-Trigger"]
    closed_period_item.refresh_from_db()
    assert closed_period_item.status == "open"


def test_the_api_snoozes_until_a_time_or_an_event(client, closed_period_item, analyst):
    client.force_login(analyst)
    url = f"/api/exceptions/{closed_period_item.pk}/snooze/"
    resp = client.post(
        url, {"until": "2026-11-25T08:00:00Z", "reason": "after the audit"}, content_type="application/json"
    )
    assert resp.status_code == 200, resp.content
    assert resp.json()["status"] == "waiting" and resp.json()["snoozed_until"] == "2026-11-25T08:00:00Z"
    resp = client.post(url, {"wait_for": "period_open"}, content_type="application/json")
    assert resp.json()["wait_key"] == "period:NW-US:2026-09" and resp.json()["snoozed_until"] is None


@pytest.mark.parametrize(
    "body, message",
    [
        ({"until": "2026-11-01T00:00:00Z"}, "in the future"),
        ({"wait_for": "moon_landing"}, "is not a valid choice"),
        ({"wait_for": "period_open", "wait_key": "period:\x00"}, "Null characters"),
        ({"wait_for": "period_open", "reason": "x" * 3000}, "no more than 2000"),
        ({"reason": "nothing to wait for"}, "Give `until`"),
        ({"until": "99999-01-01"}, "Datetime has wrong format"),
    ],
)
def test_the_api_answers_400_with_a_clear_message(client, closed_period_item, analyst, body, message):
    client.force_login(analyst)
    resp = client.post(f"/api/exceptions/{closed_period_item.pk}/snooze/", body, content_type="application/json")
    assert resp.status_code == 400 and message in resp.content.decode()


def test_a_10_mb_body_is_refused_not_a_500(client, closed_period_item, analyst):
    client.force_login(analyst)
    body = {"wait_for": "period_open", "reason": "x" * 10_000_000}
    resp = client.post(f"/api/exceptions/{closed_period_item.pk}/snooze/", body, content_type="application/json")
    assert resp.status_code == 400  # over Django's request size limit
    closed_period_item.refresh_from_db()
    assert closed_period_item.status == "open"


def test_out_of_scope_is_404_and_another_role_403(client, closed_period_item):
    client.force_login(make_person("eu_analyst", "Finance analysts", ["NW-DE"]))
    url = f"/api/exceptions/{closed_period_item.pk}/snooze/"
    assert client.post(url, {"wait_for": "period_open"}, content_type="application/json").status_code == 404
    assert client.post(f"/items/{closed_period_item.pk}/snooze/", {"mode": "event"}).status_code == 404
    client.force_login(make_person("eng", "Integration engineers"))
    assert client.post(url, {"wait_for": "period_open"}, content_type="application/json").status_code == 403


def test_the_schema_describes_the_snooze_action(client, analyst):
    client.force_login(analyst)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/exceptions/{id}/snooze/" in schema and "SnoozeRequest" in schema


def test_a_value_applied_by_an_owner_change_wakes_the_item_waiting_for_it(analyst, admin_user):
    master_data()
    Connection.objects.create(name="Directory", kind="entra_id", role="identity")  # owns employees' status
    gone = expense_report(employee_code="E0002", employee_name="Gone Person")
    documents_validate(documents=[gone])
    item = ExceptionItem.objects.get(document=gone, code="INACTIVE_EMPLOYEE")
    exception_item_snooze(item=item, actor=analyst, wait_for="master_data_value")
    page = [{"entity": "NW-US", "code": "E0002", "name": "Gone Person", "email": "", "status": "active"}]
    masterdata_upsert(stream="employees", records=page, source="erp")
    item.refresh_from_db()
    assert item.status == "waiting", "the ERP does not own the status: its value waits as a conflict"

    ownership_set(object_type="employee", field="status", owner="erp", actor=admin_user, reason="HR moved to the ERP")
    item.refresh_from_db()
    assert item.status == "open" and Employee.objects.get(code="E0002").status == "active"
    assert item.events.get(action="woke").reason.startswith("Woke: employee E0002 of NW-US is in the ERP")
