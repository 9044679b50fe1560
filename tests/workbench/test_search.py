"""Search finds names as people type them: without accents, in any case (PostgreSQL and SQLite alike)."""

import pytest
from django.urls import reverse

from tests.factories import expense_line, expense_report, master_data
from workbench.search import fold
from workbench.services.validation import documents_validate


def test_fold_takes_off_accents_and_case_and_spells_out_letters_unicode_does_not_split():
    assert fold("München") == "munchen"
    assert fold("STRASSE") == fold("Straße") == "strasse"
    assert fold("Ørsted Æbleskiver") == "orsted aebleskiver"
    assert fold("Łódź") == "lodz"
    assert fold(None) == ""


@pytest.fixture
def munich(db):
    master_data()
    doc = expense_report(
        name="Kundenbesuch München",
        employee_name="Jürgen Müller",
        lines=[expense_line(cost_center="")],  # raises MISSING_COST_CENTER: an item to find
    )
    other = expense_report(name="Client visit Boston", lines=[expense_line(cost_center="")])
    documents_validate(documents=[doc, other])
    return doc, other


@pytest.mark.parametrize("typed", ["Munchen", "münchen", "MUNCHEN", "jurgen muller", "MÜLLER"])
def test_the_queue_finds_accented_names_typed_without_accents(analyst_client, munich, typed):
    page = analyst_client.get(reverse("queue:list"), {"q": typed, "status": "active"}).content.decode()
    assert "Kundenbesuch" in page
    assert "Boston" not in page


def test_the_documents_api_finds_accented_names_typed_without_accents(analyst_client, munich):
    doc, _ = munich
    for typed in ["munchen", "MÜNCHEN", "muller"]:
        found = analyst_client.get("/api/documents/", {"q": typed}).json()
        rows = found["results"] if isinstance(found, dict) else found
        assert [r["id"] for r in rows] == [doc.pk], typed
    nothing = analyst_client.get("/api/documents/", {"q": "münchen-nord"}).json()
    assert (nothing["results"] if isinstance(nothing, dict) else nothing) == []
