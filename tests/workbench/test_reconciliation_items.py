"""Drift items in the domain (workbench/services/reconciliation_items.py): what "Accept the ERP's values"
does to each kind of drift, under field ownership, and how the item pages show drift."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import make_person
from tests.factories import master_data
from workbench.errors import WorkbenchError
from workbench.ledger_proof import Line
from workbench.models import Budget, Connection, CostCenter, Employee, ExceptionItem, LegalEntity, Project
from workbench.services.reconciliation_items import (
    drift_accept_erp_values,
    posting_drift_record,
    reconciliation_drift_record,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def erp(db):
    master_data()
    return Connection.objects.create(name="BC", kind="business_central", role="erp", config={})


def drift_item(erp, stream, records, run_id=7) -> ExceptionItem:
    (item,) = reconciliation_drift_record(connection=erp, run_id=run_id, streams=[stream], drift={stream: records})
    return item


def row(key, kind, diffs, erp_id="guid-1"):
    return {"key": key, "parts": key.split("/"), "kind": kind, "diffs": diffs, "erp_id": erp_id}


def test_accepting_applies_changes_adds_records_and_deactivates_deleted_ones(erp):
    item = drift_item(
        erp,
        "cost_centers",
        [
            row("NW-US/SALES", "changed", {"name": ["Sales", "Sales & Marketing"]}),
            row("NW-US/NEW", "added", {"name": [None, "New team"], "erp_id": [None, "guid-new"]}),
            row("NW-US/FIN", "deleted", {"name": ["Finance", None], "erp_id": ["", None]}),
        ],
    )
    engineer = make_person("eng", "Integration engineers")

    assert drift_accept_erp_values(item=item, actor=engineer) == 3

    us = LegalEntity.objects.get(code="NW-US")
    assert CostCenter.objects.get(entity=us, code="SALES").name == "Sales & Marketing"
    new = CostCenter.objects.get(entity=us, code="NEW")
    assert (new.name, new.erp_id) == ("New team", "guid-new")
    fin = CostCenter.objects.get(entity=us, code="FIN")  # kept: documents may name it
    assert fin.active is False
    item.refresh_from_db()
    assert item.status == "waiting"


def test_a_budget_amount_drift_is_applied_with_its_keys(erp):
    us = LegalEntity.objects.get(code="NW-US")
    Budget.objects.create(
        entity=us, cost_center="SALES", gl_account="8110", period="2026-11", amount=100, currency="USD"
    )
    item = drift_item(erp, "budgets", [row("NW-US/SALES/8110/2026-11", "changed", {"amount": ["100", "250.5"]})])

    drift_accept_erp_values(item=item, actor=make_person("eng", "Integration engineers"))

    assert Budget.objects.get(entity=us, cost_center="SALES", period="2026-11").amount == Decimal("250.5")


def test_a_field_another_connected_system_owns_is_held_back_as_an_ownership_conflict(erp):
    """Who a person is belongs to the identity provider once it is connected: the ERP's name for an
    employee is not applied, it becomes a conflict a person decides."""
    Connection.objects.create(name="Directory", kind="scim", role="identity", config={})
    item = drift_item(erp, "employees", [row("NW-US/E0001", "changed", {"name": ["Mary Smith", "Mary Jones"]})])

    drift_accept_erp_values(item=item, actor=make_person("eng", "Integration engineers"))

    assert Employee.objects.get(entity__code="NW-US", code="E0001").name == "Mary Smith"
    assert ExceptionItem.objects.filter(code="OWNERSHIP_CONFLICT").exists()


def test_nothing_applicable_is_refused_with_words(erp):
    item = drift_item(erp, "cost_centers", [row("garbage\x00", "changed", {"name": ["a", "b"]})])
    with pytest.raises(WorkbenchError, match="names no record"):
        drift_accept_erp_values(item=item, actor=make_person("eng", "Integration engineers"))
    item.refresh_from_db()
    assert item.status == "open"


def test_a_huge_drift_names_the_first_records_and_counts_all(erp):
    records = [row(f"NW-US/CC{i:05d}", "added", {"name": [None, f"n{i}"]}) for i in range(250)]
    (item,) = reconciliation_drift_record(
        connection=erp,
        run_id=8,
        streams=["cost_centers"],
        drift={"cost_centers": records[:200]},
        counts={"cost_centers": {"added": 250, "changed": 0, "deleted": 0}},
    )
    item.refresh_from_db()
    assert item.detail["count"] == 250 and len(item.detail["records"]) == 200
    assert item.message.startswith("Reconciliation #8: 250 records of cost centers differ from the ERP: NW-US/CC00000")
    assert item.message.endswith("and 245 more.")


def test_the_item_page_shows_the_records_and_offers_the_fixes_to_whom_may_take_them(erp, client_as):
    item = drift_item(erp, "cost_centers", [row("NW-US/SALES", "changed", {"name": ["Sales", "Sales & Marketing"]})])

    page = client_as("eng", "Integration engineers").get(f"/items/{item.pk}/").content.decode()
    assert 'data-drift="NW-US/SALES"' in page and "Sales &amp; Marketing" in page
    assert f"/items/{item.pk}/accept-erp/" in page and f"/items/{item.pk}/pull-again/" in page

    engineer = client_as("eng2", "Integration engineers")
    engineer.post(f"/items/{item.pk}/accept-erp/", HTTP_HX_REQUEST="true")
    item.refresh_from_db()
    assert item.status == "waiting"
    # It waits for the next reconciliation, maybe tonight: the page does not poll for it.
    assert f"/items/{item.pk}/progress/" not in engineer.get(f"/items/{item.pk}/").content.decode()

    read_only = client_as("ana", "Finance analysts").get(f"/items/{item.pk}/").content.decode()
    assert 'data-drift="NW-US/SALES"' in read_only and f"/items/{item.pk}/accept-erp/" not in read_only
    # No entity: only accounts that work on every entity see it.
    assert client_as("ana.de", "Finance analysts", ["NW-DE"]).get(f"/items/{item.pk}/").status_code == 404


def test_a_proof_line_off_for_no_document_is_an_item_of_its_entity_period_and_currency(erp):
    us = LegalEntity.objects.get(code="NW-US")
    off = Line(us.pk, "2026-11", "USD", Decimal("500.00"), Decimal("480.00"), 3)

    (item,) = posting_drift_record(connection=erp, run_id=9, drifts=[], lines=[off])

    item.refresh_from_db()
    assert item.code == "POSTING_DRIFT" and item.entity_id == us.pk and item.document_id is None
    assert (item.amount_at_risk, item.currency) == (Decimal(20), "USD")
    assert "NW-US 2026-11 USD" in item.message and "20.00 USD unexplained" in item.message
    assert not item.detail["repostable"]

    posting_drift_record(connection=erp, run_id=10, drifts=[], lines=[Line(us.pk, "2026-11", "USD", 1, 1, 1)])
    item.refresh_from_db()
    assert item.status == "resolved" and "#10" in item.events.get(action="reconciled").reason


def test_a_project_the_erp_deleted_is_removed_here_when_accepted_since_projects_have_no_inactive_state(erp):
    us = LegalEntity.objects.get(code="NW-US")
    Project.objects.create(entity=us, code="PRJ-9", name="Old project")
    item = drift_item(erp, "projects", [row("NW-US/PRJ-9", "deleted", {"name": ["Old project", None]})])

    assert drift_accept_erp_values(item=item, actor=make_person("eng", "Integration engineers")) == 1

    assert not Project.objects.filter(entity=us, code="PRJ-9").exists()
    item.refresh_from_db()
    assert item.status == "waiting" and "1 projects record(s) applied" in item.events.last().reason
