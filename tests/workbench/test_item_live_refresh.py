"""The item page while a fix is followed: what changed is swapped in without a reload, and the toast
after a correction says what will really happen to the document."""

import json
import re

import pytest
from django.urls import reverse

from tests.factories import expense_line, expense_report, master_data
from workbench.models import ExceptionItem
from workbench.services.documents import document_mark_posted
from workbench.services.revalidation import document_revalidate
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def sale_group(jobs_sent):
    """Two reports held by the same unknown cost center SALE; the second one also has a line in a closed period."""
    master_data()
    alone = expense_report(lines=[expense_line(cost_center="SALE", amount="120.00")])
    held = expense_report(
        lines=[expense_line(cost_center="SALE", amount="80.00"), expense_line(date="2026-09-03", amount="15.00")]
    )
    documents_validate(documents=[alone, held])
    return alone, held


def item_of(doc, code="UNKNOWN_COST_CENTER") -> ExceptionItem:
    return ExceptionItem.objects.get(document=doc, code=code)


def correct(client, item, value="SALES"):
    return client.post(
        reverse("items:correct", args=[item.pk]),
        {"line": item.line_id, "field": "cost_center", "value": value, "reason": ""},
        HTTP_HX_REQUEST="true",
    )


def toast(response) -> str:
    return json.loads(response["HX-Trigger"])["toast"]["message"]


def oob(html: str, element_id: str) -> str:
    """The out-of-band element with this id in an HTMX answer ("" if it is not there)."""
    m = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*\bhx-swap-oob="true"[^>]*>', html)
    if not m:
        return ""
    rest = html[m.start() :]
    return rest[: rest.index(f"</{m.group(1)}>")]


def test_it_swaps_the_lines_trace_and_group_in_while_a_fix_is_followed(analyst_client, analyst, sale_group):
    alone, _ = sale_group
    item = item_of(alone)
    page = analyst_client.get(reverse("items:detail", args=[item.pk])).content.decode()
    assert 'id="doc-lines"' in page and 'id="trace"' in page and 'id="group-stats"' in page
    assert "hx-swap-oob" not in page  # the full page swaps nothing

    response = correct(analyst_client, item)
    assert toast(response) == "Corrected; re-validating and posting…"
    # the answer to the action already shows the new value and the correction in the trace
    html = response.content.decode()
    assert "SALE → SALES" in oob(html, "trace")
    # the worker re-validates and the ERP posts it
    assert document_revalidate(document_id=alone.pk, actor_id=analyst.pk, repost=True) == "clean"
    document_mark_posted(document=alone, erp_system="business_central", erp_id="x1", number="PPI-108001")

    html = analyst_client.get(reverse("items:progress", args=[item.pk]), HTTP_HX_REQUEST="true").content.decode()
    lines = oob(html, "doc-lines")
    assert lines, "the lines table is swapped in out of band"
    row = re.search(r'<tr[^>]*data-line="1".*?</tr>', lines, re.S).group(0)
    assert ">SALES<" in row and 'class="bad"' not in row  # the new value, no longer flagged
    trace = oob(html, "trace")
    for event in ("corrected", "revalidated", "posted"):
        assert f"{event}" in trace, event
    assert "PPI-108001" in trace
    group = oob(html, "group-stats")
    assert "1 open item," in group and "80.00" in group  # only the other report is left in the group


def test_a_poll_that_saw_the_state_already_gets_no_repeated_swaps(analyst_client, sale_group):
    alone, _ = sale_group
    item = item_of(alone)
    correct(analyst_client, item)
    url = reverse("items:progress", args=[item.pk])
    first = analyst_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    seen = re.search(r'hx-vals=\'\{"seen": "([^"]+)"\}\'', first).group(1)
    again = analyst_client.get(url, {"seen": seen}, HTTP_HX_REQUEST="true").content.decode()
    assert not oob(again, "doc-lines") and not oob(again, "trace") and 'id="doc-facts"' in again
    assert oob(analyst_client.get(url, {"seen": "stale"}, HTTP_HX_REQUEST="true").content.decode(), "doc-lines")


def test_the_toast_says_when_another_exception_still_holds_the_document(analyst_client, sale_group):
    _, held = sale_group
    response = correct(analyst_client, item_of(held))
    assert toast(response) == (
        "Corrected. CLOSED_PERIOD on line 2 still holds the report: it will be posted once that is fixed."
    )
    # and once that one is fixed too, the document goes on
    period = item_of(held, "CLOSED_PERIOD")
    response = analyst_client.post(
        reverse("items:correct", args=[period.pk]),
        {"line": period.line_id, "field": "date", "value": "2026-11-03", "reason": "late claim"},
        HTTP_HX_REQUEST="true",
    )
    assert toast(response) == "Corrected; re-validating and posting…"
