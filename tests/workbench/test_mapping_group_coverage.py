"""A root cause whose documents come from two systems: the pre-filled rule covers the whole group, the
preview says what a narrowed rule leaves out, and applying a rule resolves exactly what its preview said."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from tests.factories import expense_line, expense_report, master_data
from workbench.models import Budget, ExceptionItem, LegalEntity, MappingRule, MappingRun, PurchaseCategory, Supplier
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.services.mapping_runs import mapping_run_execute
from workbench.services.mappings import mapping_impact, mapping_rule_save
from workbench.services.p2p_documents import p2p_documents_upsert
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db


def requisition(n: int, amounts: list[str]):
    lines = [
        {
            "description": f"Laptop {i}",
            "category": "IT-HW",
            "quantity": "1",
            "unit_price": amount,
            "amount": amount,
            "gl_account": "6110",
            "cost_center": "SALE",
            "supplier_code": "V100",
        }
        for i, amount in enumerate(amounts, 1)
    ]
    rec = {
        "external_id": f"REQ-{n}",
        "number": f"{2000 + n}",
        "entity": "NW-US",
        "requester_code": "E0001",
        "title": "Laptops",
        "currency": "USD",
        "status": "pending_approval",
        "lines": lines,
        "total": str(sum(Decimal(a) for a in amounts)),
    }
    return p2p_documents_upsert(system="coupa", kind="requisition", records=[rec]).touched[0]


@pytest.fixture
def two_sources(jobs_sent):
    """SALE (a typo of SALES) in NW-US: four Concur reports and two Coupa requisitions of two lines each.
    A requisition's budget is looked up by its cost center, so SALE also raises BUDGET_EXCEEDED there."""
    entity = master_data()
    Supplier.objects.create(entity=entity, code="V100", name="Contoso Hardware")
    PurchaseCategory.objects.create(code="IT-HW", name="IT hardware", gl_account="6110")
    Budget.objects.create(
        entity=entity,
        cost_center="SALES",
        gl_account="6110",
        period=f"{timezone.now():%Y-%m}",
        amount=Decimal("100000"),
        currency="USD",
    )
    reports = [
        expense_report(lines=[expense_line(cost_center="SALE", amount=amount)])
        for amount in ("120.50", "99.99", "200.00", "155.33")
    ]
    reqs = [requisition(1, ["1200.00", "800.00"]), requisition(2, ["2500.00", "300.00"])]
    documents_validate(documents=reports + reqs)
    return reports, reqs


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split()).replace(" ,", ",")


def group_items():
    return ExceptionItem.objects.filter(root_cause_key="UNKNOWN_COST_CENTER:NW-US:SALE", status__in=ACTIVE_STATUSES)


def money(items) -> list[tuple[str, Decimal]]:
    totals = defaultdict(Decimal)
    for i in items:
        totals[i.currency] += i.amount_at_risk
    return sorted(totals.items())


def apply(rule: MappingRule, admin_user) -> tuple[MappingRun, list[ExceptionItem]]:
    """Save and apply the rule; the items it resolved (the rule is named as their cause)."""
    active = set(ExceptionItem.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True))
    run = mapping_run_execute(mapping_rule_save(rule=rule, actor=admin_user, reason="typo"))
    resolved = list(ExceptionItem.objects.filter(pk__in=active, status="resolved"))
    assert all(f"mapping rule #{rule.pk}" in i.events.last().reason for i in resolved)
    return run, resolved


def sale_rule(**kw) -> MappingRule:
    entity = LegalEntity.objects.get(code="NW-US")
    return MappingRule(field="cost_center", entity=entity, source_value="SALE", target_value="SALES", **kw)


def test_the_item_links_to_a_rule_for_every_source_of_its_group(two_sources, client, admin_user):
    assert {i.document.source_system for i in group_items()} == {"concur", "coupa"}
    client.force_login(admin_user)
    item = group_items().filter(document__source_system="concur").first()
    html = client.get(f"/items/{item.pk}/").content.decode()
    href = html[html.index('data-testid="fix-all"') - 300 : html.index('data-testid="fix-all"')]
    query = parse_qs(urlparse(href[href.rindex('href="') + 6 :].split('"')[0].replace("&amp;", "&")).query)
    assert query["source_value"] == ["SALE"] and "source_system" not in query  # any source: the whole group
    page = client.get("/mappings/?" + "&".join(f"{k}={v[0]}" for k, v in query.items())).content.decode()
    summary = text(page[page.index('data-testid="group-summary"') :].split("</p>")[0])
    assert "8 open items, 5,375.82 USD, from concur, coupa" in summary  # what the group holds
    assert f'name="group" value="{item.group_id}"' in page
    # the queue's "By root cause" view links to the same rule
    queue = client.get("/queue/?view=groups").content.decode()
    assert "source_value=SALE" in queue and "source_system=concur" not in queue
    # the pre-filled rule, tested: the whole group, nothing left out
    impact = mapping_impact(sale_rule(), groups=[item.group_id])
    assert impact.left_out is None
    assert {i.pk for i in group_items()} <= impact.item_ids


def test_a_narrowed_rule_says_what_it_leaves_out_and_both_rules_resolve_what_they_previewed(two_sources, admin_user):
    reports, reqs = two_sources
    group = group_items().first().group_id

    narrowed = sale_rule(source_system="concur")
    preview = mapping_impact(narrowed, groups=[group])
    assert (preview.items, preview.documents, preview.amounts) == (4, 4, [("USD", Decimal("575.8200"))])
    left = preview.left_out
    assert (left["items"], left["amounts"], left["reasons"]) == (
        4,
        [("USD", Decimal("4800.0000"))],
        [("documents from coupa", 4)],
    )
    run, resolved = apply(narrowed, admin_user)
    assert (run.resolved, run.total) == (preview.items, preview.documents)
    assert {i.pk for i in resolved} == preview.item_ids and money(resolved) == preview.amounts

    # The rest of the group: the requisitions' lines, and with them their budget check (no budget for SALE)
    full = sale_rule()
    preview = mapping_impact(full, groups=[group])
    codes = sorted(ExceptionItem.objects.filter(pk__in=preview.item_ids).values_list("code", flat=True))
    assert codes == ["BUDGET_EXCEEDED"] * 2 + ["UNKNOWN_COST_CENTER"] * 4
    assert (preview.items, preview.documents, preview.raised, preview.left_out) == (6, 2, 0, None)
    run, resolved = apply(full, admin_user)
    assert (run.resolved, run.total) == (preview.items, preview.documents)
    assert {i.pk for i in resolved} == preview.item_ids and money(resolved) == preview.amounts
    assert not group_items().exists()


def test_the_preview_screen_names_what_a_narrowed_rule_leaves_out(two_sources, client, admin_user):
    client.force_login(admin_user)
    group = group_items().first().group_id
    data = {
        "field": "cost_center",
        "source_system": "concur",
        "entity": LegalEntity.objects.get(code="NW-US").pk,
        "source_value": "SALE",
        "pattern": "",
        "target_value": "SALES",
        "effective_from": "",
        "effective_to": "",
        "active": "on",
        "note": "",
        "reason": "",
        "group": group,
    }
    html = client.post("/mappings/test/", data, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="impact-items">4<' in html
    left = text(html[html.index('data-testid="impact-left-out"') :].split("</p>")[0])
    assert "Leaves 4 items of this root cause (4,800.00 USD) unresolved: documents from coupa." in left
    html = client.post("/mappings/test/", {**data, "source_system": ""}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="impact-items">10<' in html and "impact-left-out" not in html


def test_dates_and_entities_narrow_the_preview_as_they_narrow_the_application(two_sources, admin_user):
    """Effective dates are judged per line date, on the preview's side as on the apply's."""
    from datetime import date

    reports, _ = two_sources
    late = expense_report(lines=[expense_line(cost_center="SALE", date="2026-12-02", amount="10.00")])
    documents_validate(documents=[late])
    rule = sale_rule(source_system="concur", effective_to=date(2026, 11, 30))
    preview = mapping_impact(rule)
    assert (preview.items, preview.documents) == (4, 4)
    assert ("lines dated after 2026-11-30", 1) in preview.left_out["reasons"]
    run, resolved = apply(rule, admin_user)
    assert (run.resolved, run.total, {i.pk for i in resolved}) == (preview.items, preview.documents, preview.item_ids)


def test_an_entity_rule_previews_what_it_resolves_and_what_the_entity_then_reveals(two_sources, admin_user):
    """A legal-entity rule is about documents naming an unknown entity, whatever entity the rule is filed
    under; once the entity is known, the other rules judge the document and may raise what they find."""
    clean = expense_report(entity="NWUS", lines=[expense_line(amount="40.00")])
    typo = expense_report(entity="NWUS", lines=[expense_line(cost_center="SALE", amount="60.00")])
    documents_validate(documents=[clean, typo])
    entity = LegalEntity.objects.get(code="NW-US")
    rule = MappingRule(field="entity", entity=entity, source_value="NWUS", target_value="NW-US")
    preview = mapping_impact(rule)
    assert (preview.items, preview.documents, preview.raised) == (2, 2, 1)  # SALE on the second one
    assert preview.amounts == [("USD", Decimal("100.0000"))]
    run, resolved = apply(rule, admin_user)
    assert {i.pk for i in resolved} == preview.item_ids and run.total == preview.documents
    assert run.resolved == preview.items - preview.raised  # the run counts open items before and after
    assert ExceptionItem.objects.get(document=typo, code="UNKNOWN_COST_CENTER").status == "open"
