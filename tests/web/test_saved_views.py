"""Saved views: a person's named queue filters, shared with a team or not, and the view a role opens on.
A view is only filters: whoever opens it still sees only their own entities."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import make_person
from tests.factories import expense_line, expense_report, master_data
from workbench.models import ExceptionItem, SavedView
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def items():
    """One open item on NW-US and one on NW-DE (a missing cost center each)."""
    master_data("NW-US", "USD")
    master_data("NW-DE", "EUR")
    docs = [
        expense_report(lines=[expense_line(cost_center="")]),
        expense_report(entity="NW-DE", currency="EUR", lines=[expense_line(cost_center="", currency="EUR")]),
    ]
    documents_validate(documents=docs)
    return {i.entity.code: i for i in ExceptionItem.objects.filter(code="MISSING_COST_CENTER")}


def signed_in(person) -> Client:
    c = Client()
    c.force_login(person)
    return c


def menu(client) -> str:
    html = client.get("/queue/", {"all": "1"}).content.decode()
    return html[html.index('data-testid="views-menu"') : html.index('data-testid="save-view"')]


def test_a_view_shared_with_a_team_shows_up_for_a_teammate_and_not_for_others(items):
    ann = make_person("ann", "Finance analysts")
    anna = signed_in(ann)
    r = anna.post(
        "/queue/views/save/",
        {
            "name": "German cost centers",
            "query": "entity=NW-DE&code=MISSING_COST_CENTER",
            "shared_with": "Finance analysts",
        },
    )
    assert r.status_code == 302 and r["Location"] == "/queue/?code=MISSING_COST_CENTER&entity=NW-DE"
    anna.post("/queue/views/save/", {"name": "Mine only", "query": "status=open"})

    teammate = signed_in(make_person("tom", "Finance analysts"))
    assert "German cost centers" in menu(teammate) and "Mine only" not in menu(teammate)
    manager = signed_in(make_person("max", "Finance managers"))
    assert "German cost centers" not in menu(manager) and "Mine only" not in menu(manager)
    assert "German cost centers" in menu(anna) and "Mine only" in menu(anna)

    # A teammate can open it but not delete it; its owner can.
    view = SavedView.objects.get(name="German cost centers")
    assert teammate.post(f"/queue/views/{view.pk}/delete/").status_code == 302
    assert SavedView.objects.filter(pk=view.pk).exists()
    assert manager.post(f"/queue/views/{view.pk}/delete/").status_code == 404  # not even visible to them
    anna.post(f"/queue/views/{view.pk}/delete/")
    assert not SavedView.objects.filter(pk=view.pk).exists()


def test_a_view_keeps_the_rows_scoped_to_whoever_opens_it(items):
    ann = make_person("ann", "Finance analysts")  # every entity
    signed_in(ann).post(
        "/queue/views/save/", {"name": "US", "query": "entity=NW-US", "shared_with": "Finance analysts"}
    )
    dora = signed_in(make_person("dora", "Finance analysts", ["NW-DE"]))
    html = dora.get("/queue/?" + SavedView.objects.get().query).content.decode()
    assert f'data-item="{items["NW-US"].pk}"' not in html
    assert f'data-item="{items["NW-DE"].pk}"' in html  # a filter outside my entities is not applied, my rows stay mine


def test_saving_keeps_only_filters_and_refuses_values_the_queue_would_not_take(items):
    ann = signed_in(make_person("ann", "Finance analysts"))
    ann.post("/queue/views/save/", {"name": "Tidy", "query": "code=CLOSED_PERIOD&page=3&evil=1&q=&view=groups"})
    assert SavedView.objects.get(name="Tidy").query == "code=CLOSED_PERIOD"
    for bad in ["code=NOT_A_CODE", "status=evil", "entity=NOPE", "q=" + "x" * 3000]:
        r = ann.post("/queue/views/save/", {"name": "Bad", "query": bad}, follow=True)
        assert r.status_code == 200 and 'class="msg error"' in r.content.decode(), bad
    for name in ["", "x" * 81, "   "]:
        ann.post("/queue/views/save/", {"name": name, "query": "status=open"})
    r = ann.post(
        "/queue/views/save/", {"name": "Team", "query": "status=open", "shared_with": "Administrators"}, follow=True
    )
    assert "only with a team you belong to" in r.content.decode()
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Tidy"]


def test_the_queue_opens_on_my_roles_default_view_with_a_way_out(items):
    admin = make_person("dee", "Administrators")
    boss = signed_in(admin)
    boss.post("/queue/views/save/", {"name": "Germany first", "query": "entity=NW-DE"})
    view = SavedView.objects.get()
    assert boss.post("/queue/views/default/", {"role": "Finance analysts", "view": view.pk}).status_code == 302
    analyst = signed_in(make_person("ann", "Finance analysts"))
    html = analyst.get("/queue/").content.decode()
    assert 'data-testid="default-view"' in html and "Germany first" in html
    assert f'data-item="{items["NW-DE"].pk}"' in html and f'data-item="{items["NW-US"].pk}"' not in html
    assert 'href="/queue/export.csv?entity=NW-DE&amp;status=active"' in html  # the export follows the view
    rows = b"".join(analyst.get("/queue/export.csv").streaming_content).decode()
    assert f"\n{items['NW-DE'].pk}," in rows and f"\n{items['NW-US'].pk}," not in rows
    everything = analyst.get("/queue/", {"all": "1"}).content.decode()  # the escape: "All items"
    assert f'data-item="{items["NW-US"].pk}"' in everything and 'data-testid="default-view"' not in everything
    # Managers have no default: the plain queue. Only admins set defaults.
    manager = signed_in(make_person("max", "Finance managers"))
    assert f'data-item="{items["NW-US"].pk}"' in manager.get("/queue/").content.decode()
    assert manager.post("/queue/views/default/", {"role": "Finance managers", "view": view.pk}).status_code == 403
    boss.post("/queue/views/default/", {"role": "Finance analysts", "view": ""})
    assert 'data-testid="default-view"' not in analyst.get("/queue/").content.decode()
    assert boss.post("/queue/views/default/", {"role": "Nobody", "view": ""}, follow=True).status_code == 200
