"""Bulk work from the queue: preview, then the same single actions item by item, inline or in the background."""

import re
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from tests.factories import expense_line, expense_report, master_data
from workbench import jobs
from workbench.models import BulkOutcome, ExceptionEvent, ExceptionItem, OverrideRequest, WorkJob
from workbench.services import bulk
from workbench.services.exception_items import exception_item_raise
from workbench.services.item_actions import exception_item_retry
from workbench.services.overrides import override_defaults
from workbench.services.validation import documents_validate
from workbench.services.work_jobs import HANDLERS, work_job_run

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def world(jobs_sent):
    """Three US reports without a cost center (one large), a closed-period one, a German tax-code one
    (EUR), and a technical item: a dead write."""
    master_data()
    master_data("NW-DE", "EUR")
    override_defaults()
    docs = [
        expense_report(lines=[expense_line(cost_center="")]),
        expense_report(lines=[expense_line(cost_center="")]),
        expense_report(lines=[expense_line(cost_center="", amount=Decimal("25000.00"))]),
        expense_report(lines=[expense_line(date="2026-09-03")]),
        expense_report(entity="NW-DE", currency="EUR", lines=[expense_line(tax_code="VAT16", currency="EUR")]),
    ]
    documents_validate(documents=docs)
    technical = exception_item_raise(
        code="POSTING_FAILED", message="The write died after 8 attempts.", fp="POSTING_FAILED:x", document=docs[3]
    )
    jobs_sent.clear()
    items = ExceptionItem.objects.order_by("pk")
    return {
        "missing": list(items.filter(code="MISSING_COST_CENTER")),
        "closed": items.get(code="CLOSED_PERIOD"),
        "tax": items.get(code="INVALID_TAX_CODE"),
        "technical": technical,
    }


def post(client, name, **data):
    data.setdefault("scope", "all")
    data.setdefault("query", "")
    return client.post(reverse(f"queue:{name}"), data, **HX)


def preview(client, **data):
    response = post(client, "bulk_preview", **data)
    assert response.status_code == 200
    html = response.content.decode()
    numbers = {
        key: int(re.search(rf'data-testid="bulk-{key}">([\d,]+)<', html).group(1).replace(",", ""))
        for key in ("changes", "skips")
    }
    return numbers, html


def confirm(client, html, **extra):
    """Post the preview's own confirmation form, as the browser would."""
    form = re.search(r'<form class="row" method="post" action="/queue/bulk/run/"(.*?)</form>', html, re.S).group(1)
    data: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form):
        data.setdefault(name, []).append(value)
    data.update(extra)
    return client.post(reverse("queue:bulk_run"), data, **HX)


def statuses(*items):
    return [ExceptionItem.objects.get(pk=i.pk).status for i in items]


def test_the_preview_counts_changes_and_skips_with_reasons_and_money_per_currency_and_changes_nothing(
    analyst_client, world
):
    events = ExceptionEvent.objects.count()
    numbers, html = preview(analyst_client, action="retry")
    # five finance items are retried; the dead write is an integration engineer's
    assert numbers == {"changes": 5, "skips": 1}
    assert "a technical item: work for integration engineers" in html
    money = re.search(r'data-testid="bulk-money">(.*?)</p>', html, re.S).group(1)
    assert "EUR" in money and "USD" in money  # one total per currency, never added together
    assert "Confirm: retry 5 items" in html
    assert ExceptionEvent.objects.count() == events  # a preview changes nothing


def test_a_bulk_retry_over_a_filtered_set_changes_exactly_those_items(analyst_client, analyst, world, jobs_sent):
    missing = world["missing"]
    exception_item_retry(item=missing[0], actor=analyst)  # already waiting for a retry
    jobs_sent.clear()

    numbers, html = preview(analyst_client, action="retry", query="code=MISSING_COST_CENTER")
    assert numbers == {"changes": 2, "skips": 1}
    assert "already waiting" in html
    response = confirm(analyst_client, html)

    assert response.status_code == 200 and response.headers["HX-Trigger"]
    assert "Retry: 2 items changed, 1 skipped (1 already waiting" in response.content.decode()
    assert statuses(*missing) == ["waiting"] * 3
    assert statuses(world["closed"], world["tax"], world["technical"]) == ["open"] * 3  # outside the filter
    assert sorted(kw["document_id"] for name, kw in jobs_sent if name == jobs.REVALIDATE_DOCUMENT) == sorted(
        i.document_id for i in missing[1:]
    )
    # through the single action: its event, by this person
    assert ExceptionEvent.objects.filter(item__in=missing[1:], action="retry", actor=analyst).count() == 2


def test_an_analysts_bulk_on_technical_items_skips_them(analyst_client, world):
    ids = [world["technical"].pk, world["closed"].pk]
    numbers, html = preview(analyst_client, action="retry", scope="selected", item=ids)
    assert numbers == {"changes": 1, "skips": 1}
    confirm(analyst_client, html)
    assert statuses(world["technical"], world["closed"]) == ["open", "waiting"]
    skipped = BulkOutcome.objects.get(item=world["technical"])
    assert skipped.outcome == "skipped" and "integration engineers" in skipped.reason


def test_an_engineer_retries_the_technical_items_only(client_as, world):
    client = client_as("engineer", "Integration engineers")
    numbers, html = preview(client, action="retry", query="category=")
    assert numbers == {"changes": 1, "skips": 5}
    confirm(client, html)
    assert statuses(world["technical"], world["closed"]) == ["waiting", "open"]


def test_ids_from_outside_the_persons_entities_are_never_touched(client_as, world):
    client = client_as("analyst.de", "Finance analysts", ["NW-DE"])
    us = [*world["missing"], world["closed"]]
    ids = [i.pk for i in us] + [world["tax"].pk, 10**9]
    numbers, html = preview(client, action="assign", assignee="me", scope="selected", item=ids)
    assert numbers == {"changes": 1, "skips": 5}
    assert "not found in your entities" in html
    assert "USD" not in re.search(r'data-testid="bulk-money">(.*?)</p>', html, re.S).group(1)
    confirm(client, html)
    assert ExceptionItem.objects.get(pk=world["tax"].pk).assignee.username == "analyst.de"
    assert all(ExceptionItem.objects.get(pk=i.pk).assignee is None for i in us)
    assert not ExceptionEvent.objects.filter(item__in=us, actor__username="analyst.de").exists()


def test_a_bulk_override_asks_a_second_person_exactly_where_the_single_action_would(analyst_client, world):
    small, _, large = world["missing"]
    numbers, html = preview(
        analyst_client,
        action="override",
        query="code=MISSING_COST_CENTER",
        reason_code="BUSINESS_OK",
        reason="Cost centre confirmed by the department head",
    )
    assert numbers == {"changes": 2, "skips": 0}
    assert 'data-testid="bulk-requests">1<' in html  # above 10,000 USD: a finance manager decides
    confirm(analyst_client, html)
    assert statuses(*world["missing"]) == ["overridden", "overridden", "waiting"]
    requests = {r.item_id: r.state for r in OverrideRequest.objects.all()}
    assert requests == {small.pk: "applied", world["missing"][1].pk: "applied", large.pk: "pending"}

    # the same override again: the pending one is not asked twice, the overridden ones are no longer open
    numbers, html = preview(
        analyst_client, action="override", query="code=MISSING_COST_CENTER&status=", reason_code="BUSINESS_OK",
        reason="again",
    )  # fmt: skip
    assert numbers == {"changes": 0, "skips": 3} and "already waits for approval" in html


def test_a_large_set_runs_in_the_background_with_progress_and_a_way_back(
    analyst_client, analyst, world, settings, monkeypatch
):
    settings.BULK_INLINE_MAX = 2
    numbers, html = preview(analyst_client, action="assign", assignee="me", query="code=MISSING_COST_CENTER")
    assert numbers["changes"] == 3 and "runs in the background" in html
    response = confirm(analyst_client, html)

    job = WorkJob.objects.get(kind="bulk")
    assert response.headers["HX-Redirect"] == f"/jobs/{job.pk}/"
    assert (job.status, job.total) == ("queued", 3)
    assert statuses(*world["missing"]) == ["open"] * 3  # nothing yet: the worker does it

    seen = []

    def watched(job, progress):
        return bulk.bulk_handle(job, lambda done, total: (seen.append((done, total)), progress(done, total)))

    monkeypatch.setitem(HANDLERS, "bulk", watched)
    assert work_job_run(job.pk) == "done"
    assert seen[-1] == (3, 3)
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == ("done", 3, 3)
    assert job.message == "Assign: 3 items changed."
    assert job.result["back_url"] == "/queue/?code=MISSING_COST_CENTER&status=active"
    assert statuses(*world["missing"]) == ["in_progress"] * 3
    assert all(ExceptionItem.objects.get(pk=i.pk).assignee == analyst for i in world["missing"])

    page = analyst_client.get(f"/jobs/{job.pk}/progress/")
    assert page.status_code == 286  # finished: the bar stops polling
    assert b"3 items changed" in page.content and b"/queue/?code=MISSING_COST_CENTER&amp;status=active" in page.content


def test_running_a_bulk_job_twice_changes_nothing_twice(analyst_client, analyst, world, jobs_sent):
    ids = [i.pk for i in world["missing"]] + [world["closed"].pk]
    job, created = bulk.bulk_start(user=analyst, action="retry", ids=ids, args={}, token="t1", background=True)
    assert created and jobs_sent == [(jobs.RUN_WORK_JOB, {"job_id": job.pk})]
    assert bulk.bulk_start(user=analyst, action="retry", ids=ids, args={}, token="t1")[0] == job  # same confirm

    assert work_job_run(job.pk) == "done"
    events, sent = ExceptionEvent.objects.count(), len(jobs_sent)
    assert work_job_run(job.pk) == "gone"  # delivered again: a finished job is left alone
    # a worker that died after the items but before marking the job done gets it back: still nothing twice
    WorkJob.objects.filter(pk=job.pk).update(status="running")
    assert work_job_run(job.pk) == "done"
    assert (ExceptionEvent.objects.count(), len(jobs_sent)) == (events, sent)
    job.refresh_from_db()
    assert job.message == "Retry: 4 items changed."


def test_bulk_input_that_makes_no_sense_gets_a_clear_answer(analyst_client, world):
    cases = [
        ({"action": "explode"}, "Choose what to do"),
        ({"action": "override", "reason_code": "NOPE", "reason": "x"}, "reason code"),
        ({"action": "override", "reason_code": "BUSINESS_OK", "reason": ""}, "Say in a sentence"),
        ({"action": "retry", "query": "code=%00&q=a%00b"}, "not valid"),
        ({"action": "send_back", "reason": "x" * 5000}, "4,000 characters"),
        ({"action": "assign", "assignee": "nobody-like-this"}, "Choose a person"),
        ({"action": "retry", "scope": "selected", "item": ["²", "1" * 40, "-3"]}, "Tick the items"),
        ({"action": "retry", "query": "age=forever"}, "not valid"),
    ]
    for data, words in cases:
        for name in ("bulk_preview", "bulk_run"):
            response = post(analyst_client, name, **data)
            assert response.status_code == 200, (name, data.get("action"))
            assert words in response.content.decode(), (name, words)
    # 10 MB of reason: refused before any view runs (the request body limit), never a 500
    assert post(analyst_client, "bulk_run", action="send_back", reason="x" * 10_000_000).status_code == 400
    assert not ExceptionEvent.objects.filter(actor__username="analyst").exists()


def test_send_back_to_a_source_that_is_not_connected_is_skipped_with_the_services_words(analyst_client, world):
    numbers, html = preview(analyst_client, action="send_back", scope="selected", item=[world["closed"].pk])
    assert numbers == {"changes": 1, "skips": 0}
    response = confirm(analyst_client, html)
    assert "1 skipped" in response.content.decode() and "not connected" in response.content.decode()
    assert statuses(world["closed"]) == ["open"]  # the transition was rolled back with the refusal


def test_the_item_page_walks_the_queue_it_came_from(analyst_client, world):
    a, b, c = world["missing"]
    order = [
        int(pk)
        for pk in re.findall(
            r'data-item="(\d+)"', analyst_client.get("/queue/?code=MISSING_COST_CENTER").content.decode()
        )
    ]
    assert sorted(order) == sorted([a.pk, b.pk, c.pk])
    middle = analyst_client.get(f"/items/{order[1]}/?code=MISSING_COST_CENTER&pos=1").content.decode()
    assert f'href="/items/{order[0]}/?code=MISSING_COST_CENTER&amp;status=active&amp;pos=0" rel="prev"' in middle
    assert f'href="/items/{order[2]}/?code=MISSING_COST_CENTER&amp;status=active&amp;pos=2" rel="next"' in middle
    assert 'href="/queue/?code=MISSING_COST_CENTER&amp;status=active" class="back"' in middle
    # an item that left the filtered set (here: overridden) is placed by its row
    ExceptionItem.objects.filter(pk=order[1]).update(status="overridden")
    left = analyst_client.get(f"/items/{order[1]}/?code=MISSING_COST_CENTER&pos=1").content.decode()
    assert f'href="/items/{order[2]}/?code=MISSING_COST_CENTER&amp;status=active&amp;pos=1" rel="next"' in left
    # opened without a queue: no walk
    assert 'data-testid="queue-nav"' not in analyst_client.get(f"/items/{a.pk}/").content.decode()


def test_a_bulk_snooze_waits_for_each_items_own_event_or_a_date(analyst_client, analyst, world):
    # No date: each item waits for what its code suggests; the closed period waits for its period to open.
    numbers, html = preview(analyst_client, action="snooze", query="code=CLOSED_PERIOD", reason="month-end")
    assert numbers == {"changes": 1, "skips": 0}
    confirm(analyst_client, html)
    closed = ExceptionItem.objects.get(pk=world["closed"].pk)
    assert (closed.status, closed.wait_for) == ("waiting", "period_open") and closed.wait_key.startswith("period:")
    assert ExceptionEvent.objects.filter(item=closed, action="snoozed", actor=analyst).exists()


def test_a_bulk_snooze_with_a_date_sets_every_item_aside(analyst_client, world):
    with time_machine.travel("2026-11-20 10:00Z", tick=False):
        numbers, html = preview(analyst_client, action="snooze", query="code=MISSING_COST_CENTER", until="2026-11-27")
        assert numbers == {"changes": 3, "skips": 0}
        confirm(analyst_client, html)
        items = ExceptionItem.objects.filter(code="MISSING_COST_CENTER")
        assert {(i.status, i.snoozed_until.date().isoformat()) for i in items} == {("waiting", "2026-11-27")}
        bad = post(analyst_client, "bulk_preview", action="snooze", until="27/11/2026").content.decode()
        assert "YYYY-MM-DD" in bad
        past = post(analyst_client, "bulk_preview", action="snooze", until="2026-11-01").content.decode()
        assert "must be in the future" in past
