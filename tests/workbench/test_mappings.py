"""Mapping rules: impact before saving, versions, application that resolves a whole group, arrivals mapped."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.factories import master_data
from workbench.errors import InvalidCorrection
from workbench.models import Document, ExceptionItem, MappingRule, MappingRuleVersion, MappingRun
from workbench.services.documents import documents_upsert_from_source
from workbench.services.mapping_runs import mapping_run_execute
from workbench.services.mappings import mapping_impact, mapping_rule_save
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db


def report(n: int, cost_center: str, amount: str = "100.00", source: str = "concur") -> Document:
    rec = {
        "external_id": f"R{n}",
        "number": f"N{n}",
        "name": "Trip",
        "entity": "NW-US",
        "employee_code": "E0001",
        "employee_name": "Mary Smith",
        "currency": "USD",
        "total": amount,
        "version": "1",
        "approval_status": "approved",
        "lines": [
            {
                "external_id": f"L{n}",
                "date": "2026-11-10",
                "category": "TAXI",
                "category_name": "Taxi",
                "amount": amount,
                "currency": "USD",
                "gl_account": "8110",
                "cost_center": cost_center,
                "tax_code": "EXEMPT",
            }
        ],
    }
    doc = documents_upsert_from_source(system=source, records=[rec]).created[0]
    documents_validate(documents=[doc])
    return doc


@pytest.fixture
def world(admin_user, jobs_sent):
    master_data()
    return [report(i, "SALE", amount=f"{100 + i}.00") for i in range(5)] + [report(10, "ENGG"), report(11, "SALES")]


def rule(**kw) -> MappingRule:
    from workbench.models import LegalEntity

    fields = {
        "field": "cost_center",
        "source_value": "SALE",
        "target_value": "SALES",
        "entity": LegalEntity.objects.get(code="NW-US"),
        **kw,
    }
    return MappingRule(**fields)


def test_impact_counts_the_items_documents_and_money_a_rule_would_resolve(world):
    impact = mapping_impact(rule())
    assert (impact.items, impact.documents) == (5, 5)
    assert impact.amounts == [("USD", Decimal("510.0000"))]
    assert impact.samples[0]["before"] == "SALE" and impact.samples[0]["after"] == "SALES" and not impact.problem
    pattern = mapping_impact(MappingRule(field="cost_center", pattern="SALE|ENGG", target_value="SALES"))
    assert pattern.items == 6
    assert mapping_impact(rule(source_system="coupa")).items == 0  # only documents from that source
    assert "not an active cost center" in mapping_impact(rule(target_value="NOPE")).problem


def test_saving_resolves_the_whole_group_names_the_rule_and_queues_postings(world, admin_user, monkeypatch):
    queued = []
    monkeypatch.setattr(
        "workbench.services.mapping_runs.postings_enqueue", lambda docs, run_id=None: queued.extend(docs) or docs
    )
    run = mapping_rule_save(rule=rule(), actor=admin_user, reason="Concur's old spelling of Sales")
    assert run.status == "queued"
    run = mapping_run_execute(run)
    assert (run.status, run.total, run.done, run.resolved, run.queued_for_posting) == ("done", 5, 5, 5, 5)
    items = ExceptionItem.objects.filter(code="UNKNOWN_COST_CENTER", root_cause_key__endswith=":SALE")
    assert {i.status for i in items} == {"resolved"}
    assert all("mapping rule #" in i.events.last().reason for i in items)
    assert sorted(d.number for d in queued) == [f"N{i}" for i in range(5)]
    doc = Document.objects.get(number="N0")
    assert doc.lines.get().cost_center == "SALES" and doc.revision == 1
    assert doc.events.filter(action="mapped").exists()
    # ENGG is another group: untouched
    assert ExceptionItem.objects.get(document__number="N10").status == "open"


def test_a_later_arrival_is_mapped_before_it_is_judged(world, admin_user):
    mapping_rule_save(rule=rule(), actor=admin_user)
    doc = report(20, "SALE")
    assert doc.lines.get().cost_center == "SALES"
    assert not ExceptionItem.objects.filter(document=doc).exists()


def test_every_change_is_a_version_with_author_and_reason(world, admin_user):
    r = rule()
    mapping_rule_save(rule=r, actor=admin_user, reason="first")
    r.target_value = "ENG"
    mapping_rule_save(rule=r, actor=admin_user, reason="ENG owns these")
    r.active = False
    assert mapping_rule_save(rule=r, actor=admin_user, reason="retired") is None
    versions = list(
        MappingRuleVersion.objects.filter(rule=r).values_list("version", "action", "snapshot__target_value", "reason")
    )
    assert versions == [
        (3, "deactivated", "ENG", "retired"),
        (2, "changed", "ENG", "ENG owns these"),
        (1, "created", "SALES", "first"),
    ]
    assert MappingRun.objects.filter(rule=r).count() == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"target_value": "NOPE"},
        {"source_value": "", "pattern": ""},
        {"source_value": "", "pattern": "([unclosed"},
        {"effective_from": date(2026, 12, 1), "effective_to": date(2026, 11, 1)},
    ],
)
def test_invalid_rules_are_refused_with_a_reason(world, admin_user, bad):
    r = rule()
    for k, v in bad.items():
        setattr(r, k, v)
    with pytest.raises((InvalidCorrection, Exception)) as exc:
        mapping_rule_save(rule=r, actor=admin_user)
    assert str(exc.value)
    assert not MappingRule.objects.exists()


def test_a_newer_version_supersedes_a_queued_run(world, admin_user):
    r = rule()
    first = mapping_rule_save(rule=r, actor=admin_user)
    r.target_value = "ENG"
    mapping_rule_save(rule=r, actor=admin_user)
    assert mapping_run_execute(first).message.startswith("A newer version")


# --- screens -------------------------------------------------------------------------------------------------


def form_data(**over):
    from workbench.models import LegalEntity

    data = {
        "field": "cost_center",
        "source_system": "",
        "entity": LegalEntity.objects.get(code="NW-US").pk,
        "source_value": "SALE",
        "pattern": "",
        "target_value": "SALES",
        "effective_from": "",
        "effective_to": "",
        "active": "on",
        "note": "",
        "reason": "Old spelling",
    }
    data.update(over)
    return data


def test_the_admin_tests_a_rule_then_saves_it_and_follows_the_progress(world, client, admin_user, monkeypatch):
    client.force_login(admin_user)
    page = client.get("/mappings/?field=cost_center&source_value=SALE&source_system=concur").content.decode()
    assert 'value="SALE"' in page and 'data-testid="rule-form"' in page
    test = client.post("/mappings/test/", form_data(), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="impact-items">5<' in test and "510.00" in test and "SALE" in test
    bad = client.post("/mappings/test/", form_data(target_value="NOPE"), HTTP_HX_REQUEST="true").content.decode()
    assert "not an active cost center" in bad
    saved = client.post("/mappings/save/", form_data(), HTTP_HX_REQUEST="true")
    assert (
        "Saved as version 1" in saved.headers["HX-Trigger"] and 'data-testid="run-progress"' in saved.content.decode()
    )
    run = MappingRun.objects.get()
    mapping_run_execute(run)
    done = client.get(f"/mappings/runs/{run.pk}/", HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and 'data-testid="run-resolved">5<' in done.content.decode()  # polling stops
    assert not ExceptionItem.objects.filter(
        code="UNKNOWN_COST_CENTER", root_cause_key__endswith=":SALE", status="open"
    ).exists()


def test_an_item_links_to_a_rule_for_its_whole_group(world, client, admin_user, analyst):
    from django.test import Client

    analyst_client = Client()
    analyst_client.force_login(analyst)
    item = ExceptionItem.objects.filter(code="UNKNOWN_COST_CENTER", root_cause_key__endswith=":SALE").first()
    client.force_login(admin_user)
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert 'data-testid="fix-all"' in html and "source_value=SALE" in html and "5 items" in html
    assert "5 open items" in html
    assert 'data-testid="fix-all"' not in analyst_client.get(f"/items/{item.pk}/").content.decode()
    assert analyst_client.get("/mappings/").status_code == 403


def test_bad_input_on_the_mapping_screens_is_a_message_not_a_500(world, client, admin_user):
    client.force_login(admin_user)
    for data in (
        form_data(pattern="([x", source_value=""),
        form_data(source_value="", pattern=""),
        {"field": "nope"},
        form_data(effective_from="2026-12-01", effective_to="2026-11-01"),
        form_data(target_value="<script>x</script>"),
    ):
        for url in ("/mappings/test/", "/mappings/save/"):
            r = client.post(url, data, HTTP_HX_REQUEST="true")
            assert r.status_code == 200, (url, data, r.content[:300])
    assert not MappingRule.objects.exists()


def test_a_missing_field_is_named_as_the_form_labels_it(world, client, admin_user):
    client.force_login(admin_user)
    html = client.post("/mappings/test/", form_data(target_value=""), HTTP_HX_REQUEST="true").content.decode()
    assert "Check the fields: ERP value — This field is required." in html and "target_value —" not in html
