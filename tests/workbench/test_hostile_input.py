"""Hostile input never ends as a 500: NUL bytes in form and query values (PostgreSQL refuses them in
text), odd ids, unknown pages. Run on PostgreSQL in CI, where a NUL reaching a query fails."""

import pytest
from django.urls import reverse

from tests.factories import expense_line, expense_report, master_data
from workbench.models import ExceptionItem
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db
NUL = "a\x00b"


@pytest.fixture
def item():
    master_data()
    doc = expense_report(lines=[expense_line(cost_center="SALE")])
    documents_validate(documents=[doc])
    return ExceptionItem.objects.get(document=doc)


@pytest.mark.parametrize(
    "path",
    [
        "/queue/?q=a%00b&code=%00&entity=NW%00US&assignee=%00&age=%00&status=%00",
        "/queue/?view=groups&group=%00&group_sort=%00&money_currency=%00",
        "/p2p/budgets/?entity=NW%00US&period=2026%0011",
        "/p2p/accruals/?entity=NW%00US",
        "/masterdata/suppliers/?q=%00&link=%00",
        "/sync/reconciliation/?kind=%00&stream=%00",
        "/api/exceptions/?q=%00&code=%00&entity=%00&assignee=%00",
        "/api/documents/?number=%00",
    ],
)
def test_nul_bytes_in_a_query_are_never_a_500(admin_client, item, path):
    assert admin_client.get(path).status_code < 500


def test_nul_bytes_in_forms_are_never_a_500(admin_client, item):
    posts = [
        (reverse("items:assign", args=[item.pk]), {"assignee": NUL}),
        (reverse("queue:bulk_assign"), {"item": [str(item.pk), "1\x00"], "assignee": NUL}),
        (reverse("items:override", args=[item.pk]), {"reason": NUL}),
        (reverse("items:send_back", args=[item.pk]), {"reason": NUL}),
        (
            reverse("masterdata:owner"),
            {"object": "supplier\x00", "field": "tax_id\x00", "owner": "erp\x00", "reason": NUL},
        ),
    ]
    for path, data in posts:
        response = admin_client.post(path, data, HTTP_HX_REQUEST="true")
        assert response.status_code < 500, (path, response.status_code)
    item.refresh_from_db()
    assert "\x00" not in "".join(item.events.values_list("reason", flat=True))


def test_an_unknown_page_is_a_styled_404_that_leads_back(admin_client):
    response = admin_client.get("/items/987654321/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'data-testid="not-found"' in html and 'href="/queue/"' in html and "Exception Workbench" in html
