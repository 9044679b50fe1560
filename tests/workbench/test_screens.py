"""Screens and API through the test client: what an analyst would notice."""

import re

import pytest
from django.urls import reverse

from tests.factories import expense_line, expense_report, master_data
from workbench.models import Document, ExceptionItem
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def queue_items():
    master_data()
    master_data("NW-DE", "EUR")
    docs = [
        expense_report(lines=[expense_line(cost_center="")]),
        expense_report(lines=[expense_line(cost_center="SALE", description=HOSTILE)], name=HOSTILE),
        expense_report(lines=[expense_line(date="2026-09-03")]),
        expense_report(entity="NW-DE", currency="EUR", lines=[expense_line(tax_code="VAT16", currency="EUR")]),
        expense_report(employee_code="E0002", employee_name="Gone Person"),
    ]
    documents_validate(documents=docs)
    return docs


def test_unauthenticated_users_see_only_the_login_page(client):
    for url in [reverse("queue:list"), reverse("sync:page"), "/items/1/", "/admin/"]:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    assert client.get("/accounts/login/").status_code == 200


def test_the_api_refuses_anonymous_callers(client):
    assert client.get("/api/exceptions/").status_code in (401, 403)


def test_healthz_answers_without_login(client, monkeypatch):
    monkeypatch.setattr("sync.workers.broker_backlog", lambda: 0)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"


def test_queue_lists_active_items_with_counts_per_category(analyst_client, queue_items):
    response = analyst_client.get(reverse("queue:list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="count-total">5<' in html
    assert 'id="count-master_data">3<' in html and 'id="count-policy">2<' in html
    for code in [
        "MISSING_COST_CENTER",
        "UNKNOWN_COST_CENTER",
        "CLOSED_PERIOD",
        "INVALID_TAX_CODE",
        "INACTIVE_EMPLOYEE",
    ]:
        assert code in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"code": "CLOSED_PERIOD"}, {"CLOSED_PERIOD"}),
        ({"category": "policy"}, {"CLOSED_PERIOD", "INACTIVE_EMPLOYEE"}),
        ({"entity": "NW-DE"}, {"INVALID_TAX_CODE"}),
        ({"q": "Gone Person"}, {"INACTIVE_EMPLOYEE"}),
        (
            {"assignee": "none", "category": "master_data"},
            {"MISSING_COST_CENTER", "UNKNOWN_COST_CENTER", "INVALID_TAX_CODE"},
        ),
        ({"age": "7d+"}, set()),
        ({"status": "resolved"}, set()),
    ],
)
def test_queue_filters(analyst_client, queue_items, params, expected):
    response = analyst_client.get(reverse("queue:list"), params, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    shown = set(re.findall(r'<span class="badge cat-\w+" title="[^"]*">(\w+)</span>', response.content.decode()))
    assert shown == expected
    # the API takes the same filters as query parameters
    api = analyst_client.get("/api/exceptions/", params).json()
    assert {r["code"] for r in api["results"]} == expected


def test_htmx_filtering_returns_the_table_and_updates_counts_out_of_band(analyst_client, queue_items):
    response = analyst_client.get(reverse("queue:list"), {"entity": "NW-DE"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and "<table" in html
    assert 'id="count-total" hx-swap-oob="true">1<' in html


def test_hostile_text_renders_as_text(analyst_client, queue_items):
    item = ExceptionItem.objects.get(code="UNKNOWN_COST_CENTER")
    for url in [
        reverse("queue:list"),
        reverse("items:detail", args=[item.pk]),
        reverse("documents:detail", args=[item.document_id]),
    ]:
        html = analyst_client.get(url).content.decode()
        assert HOSTILE not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


def test_item_page_shows_document_lines_message_choices_and_trace(analyst_client, queue_items):
    item = ExceptionItem.objects.get(code="MISSING_COST_CENTER")
    html = analyst_client.get(reverse("items:detail", args=[item.pk])).content.decode()
    assert item.message in html
    assert item.document.number in html and "Hotel - Chicago" in html
    assert '<option value="ENG">ENG — Engineering</option>' in html  # choices from ERP master data
    assert "Approved in concur" in html and str(item.document.correlation_id)[:8] in html


def test_a_bad_query_parameter_is_a_clear_answer_not_a_500(analyst_client, queue_items):
    assert analyst_client.get(reverse("queue:list"), {"entity": "NOPE", "page": "x"}).status_code == 200
    response = analyst_client.get("/api/exceptions/", {"status": "bogus"})
    assert response.status_code == 400 and "status" in response.json()
    assert analyst_client.get("/items/999999/").status_code == 404


def test_correcting_a_line_through_the_api_records_who_did_it(analyst_client, analyst, queue_items):
    item = ExceptionItem.objects.get(code="MISSING_COST_CENTER")
    line = item.line
    bad = analyst_client.post(
        f"/api/exceptions/{item.pk}/correct/",
        {"line": line.pk, "field": "cost_center", "value": "NOPE"},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "not an active cost center" in bad.json()["detail"]
    ok = analyst_client.post(
        f"/api/exceptions/{item.pk}/correct/",
        {"line": line.pk, "field": "cost_center", "value": "ENG"},
        content_type="application/json",
    )
    assert ok.status_code == 200 and ok.json()["status"] == "waiting"
    line.refresh_from_db()
    assert line.cost_center == "ENG"
    event = item.document.events.get(action="corrected")
    assert event.actor == analyst and "(empty) → ENG" in event.message


def test_moving_a_line_to_a_closed_period_is_refused(analyst_client, queue_items):
    item = ExceptionItem.objects.get(code="CLOSED_PERIOD")
    response = analyst_client.post(
        reverse("items:correct", args=[item.pk]),
        {"line": item.line_id, "field": "date", "value": "2026-09-30", "reason": "late"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "not in an open period" in response["HX-Trigger"]
    item.refresh_from_db()
    assert item.status == "open"


def test_schema_and_docs_pages(analyst_client):
    assert analyst_client.get("/api/schema/").status_code == 200
    docs = analyst_client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_token_authentication(client, analyst, queue_items):
    from workbench.models import ApiToken

    token, key = ApiToken.issue(analyst, "script")
    assert key not in token.digest and token.digest != key  # only the digest is stored
    response = client.get("/api/exceptions/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200 and response.json()["count"] == 5
    token.revoked_at = token.created_at
    token.save()
    assert client.get("/api/exceptions/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401


@pytest.mark.parametrize(
    "body",
    ["not json", '{"reason": 12}', '{"line": "x", "field": "hack", "value": "' + "A" * 5000 + '"}', "[]", "null"],
)
@pytest.mark.parametrize("action", ["assign", "override", "retry", "correct"])
def test_garbage_sent_to_an_action_is_a_clear_4xx_never_a_500(analyst_client, queue_items, action, body):
    item = ExceptionItem.objects.first()
    response = analyst_client.post(f"/api/exceptions/{item.pk}/{action}/", body, content_type="application/json")
    assert response.status_code < 500
    if response.status_code >= 400:
        assert response.json()


def test_hostile_search_strings_are_harmless(analyst_client, queue_items):
    for q in [HOSTILE, "' OR 1=1 --", "%", "_", "x" * 5000, "Ünïcødé 日本", "\x00"]:
        response = analyst_client.get(reverse("queue:list"), {"q": q})
        assert response.status_code in (200, 400), q
        assert HOSTILE not in response.content.decode()


def test_bulk_assign_takes_the_ticked_items(analyst_client, analyst, queue_items):
    ids = list(ExceptionItem.objects.order_by("id").values_list("pk", flat=True)[:3])
    response = analyst_client.post(
        reverse("queue:bulk_assign"), {"item": ids, "assignee": "me"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 204
    assert "Assigned 3 items to analyst" in response["HX-Trigger"] and "queueChanged" in response["HX-Trigger"]
    assert set(ExceptionItem.objects.filter(assignee=analyst).values_list("pk", flat=True)) == set(ids)
    assert ExceptionItem.objects.filter(pk__in=ids, status="in_progress").count() == 3


def test_odd_digits_and_impossible_dates_are_clear_answers(analyst_client, queue_items):
    assert analyst_client.get(reverse("queue:list"), {"q": "²", "group": "²"}).status_code == 200
    assert analyst_client.post(reverse("queue:bulk_assign"), {"item": ["²", "1" * 40]}).status_code == 204
    assert analyst_client.get("/items/999999/progress/").status_code == 404
    item = ExceptionItem.objects.get(code="CLOSED_PERIOD")
    response = analyst_client.post(
        f"/api/exceptions/{item.pk}/correct/",
        {"line": item.line_id, "field": "date", "value": "2026-10-32", "reason": "x"},
        content_type="application/json",
    )
    assert response.status_code == 400 and "not a date" in response.json()["detail"]


def test_the_item_page_updates_the_documents_states_after_an_action(analyst_client, queue_items):
    item = ExceptionItem.objects.filter(document__isnull=False).first()
    full = analyst_client.get(reverse("items:detail", args=[item.pk])).content.decode()
    assert 'id="doc-facts"' in full and 'id="doc-facts" hx-swap-oob' not in full
    # The worker posts the report meanwhile; the next HTMX answer carries the document's block too.
    Document.objects.filter(pk=item.document_id).update(financial_status="posted", erp_document_number="PPI-108042")
    html = analyst_client.get(reverse("items:progress", args=[item.pk]), HTTP_HX_REQUEST="true").content.decode()
    facts = html[html.index('<dl class="facts" id="doc-facts" hx-swap-oob="true">') :]
    assert "Posted" in facts[: facts.index("</dl>")] and "PPI-108042" in facts[: facts.index("</dl>")]
