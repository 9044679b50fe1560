"""GL accounts the ERP accepts: lines on a blocked, heading or no-direct-posting account are caught before
posting, one group per account; a mapping rule cannot send lines to such an account."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import expense_line, expense_report, master_data
from workbench.errors import InvalidCorrection
from workbench.models import (
    Connection,
    Document,
    Employee,
    ExceptionItem,
    GLAccount,
    LegalEntity,
    MappingRule,
    PurchaseCategory,
    Supplier,
)
from workbench.rules import RULES
from workbench.rules.context import MasterDataContext
from workbench.services.mapping_runs import mapping_run_execute
from workbench.services.mappings import mapping_rule_save
from workbench.services.masterdata import masterdata_upsert
from workbench.services.p2p_documents import p2p_documents_upsert
from workbench.services.requisitions import clear_cache
from workbench.services.revalidation import documents_revalidate, documents_revalidate_open
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db
CODE = "BLOCKED_GL_ACCOUNT"
REFUSED = {
    "blocked": ({"blocked": True}, "is blocked in the ERP"),
    "heading": ({"account_type": "Heading"}, "is a heading account, not a posting account"),
    "no direct posting": ({"direct_posting": False}, "does not allow direct posting"),
}


@pytest.fixture
def entity():
    return master_data()


@pytest.fixture
def erp(db):
    """An ERP connection, so that clean documents are queued for posting (nothing is sent in these tests)."""
    return Connection.objects.create(name="Business Central", kind="business_central", role="erp", config={})


def refuse(code: str, how: str, entity_code: str = "NW-US") -> None:
    GLAccount.objects.filter(entity__code=entity_code, code=code).update(**REFUSED[how][0])


def items(doc=None, status=("open", "in_progress")):
    qs = ExceptionItem.objects.filter(code=CODE, status__in=status)
    return qs.filter(document=doc) if doc is not None else qs


def erp_sends(account: str, **state) -> None:
    """The ERP's master-data stream, as the sync stores it (one account of NW-US)."""
    record = {
        "entity": "NW-US",
        "code": account,
        "name": "Meals",
        "category": "Expense",
        "blocked": False,
        "account_type": "Posting",
        "direct_posting": True,
        "external_id": f"acc-{account}",
        **state,
    }
    stored, errors = masterdata_upsert(stream="gl_accounts", records=[record])
    assert (stored, errors) == (1, [])


# --- the rule ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", list(REFUSED))
def test_a_line_on_an_account_the_erp_refuses_is_one_item_grouped_by_the_account(entity, how):
    refuse("8120", how)
    a = expense_report(lines=[expense_line(), expense_line(gl_account="8120")])
    b = expense_report(lines=[expense_line(gl_account="8120")])

    assert documents_validate(documents=[a, b]) == []

    found = items()
    assert found.count() == 2
    item = items(a).get()
    assert item.line.line_no == 2 and item.detail["account"] == "8120"
    assert REFUSED[how][1] in item.message and "'8120'" in item.message
    assert found.values("group").distinct().count() == 1
    assert item.group.root_cause_key == f"{CODE}:NW-US:8120"
    assert item.kind == "business" and item.category == "master_data"


def test_an_account_the_erp_does_not_have_is_caught_once_its_chart_is_known(entity):
    doc = expense_report(lines=[expense_line(gl_account="9999")])
    documents_validate(documents=[doc])
    assert "does not exist in the ERP" in items(doc).get().message

    # An entity whose chart was never pulled is not judged on accounts (every line would be "unknown").
    master_data("NW-DE", "EUR")
    GLAccount.objects.filter(entity__code="NW-DE").delete()
    de = expense_report(entity="NW-DE", currency="EUR", lines=[expense_line(gl_account="9999", tax_code="")])
    documents_validate(documents=[de])
    assert not items(de).exists()


def test_a_clean_account_and_an_empty_one_raise_nothing(entity):
    doc = expense_report(lines=[expense_line(gl_account="8110"), expense_line(gl_account="")])
    documents_validate(documents=[doc])
    assert not items(doc).exists()


def test_unblocking_in_the_erp_and_the_next_master_data_sync_resolve_the_group(entity, erp, jobs_sent):
    erp_sends("8120", blocked=True)
    docs = [expense_report(lines=[expense_line(gl_account="8120")]) for _ in range(3)]
    documents_validate(documents=docs)
    assert items().count() == 3

    erp_sends("8120", blocked=False)
    documents_revalidate_open()  # what the master-data pull does after storing its pages

    assert not items().exists()
    assert ExceptionItem.objects.filter(code=CODE, status="resolved").count() == 3
    assert {d.financial_status for d in Document.objects.filter(pk__in=[d.pk for d in docs])} == {"posting"}


def test_an_account_blocked_later_holds_open_documents_and_takes_back_their_queued_posting(entity, erp, jobs_sent):
    erp_sends("8120")
    waiting = expense_report(lines=[expense_line(gl_account="8120")])
    other = expense_report(lines=[expense_line(gl_account="8110")])
    documents_revalidate([waiting, other])  # clean: both queued for posting
    assert Document.objects.get(pk=waiting.pk).financial_status == "posting"
    assert not items().exists()

    erp_sends("8120", blocked=True)
    documents_revalidate_open()

    item = items(waiting).get()
    assert "is blocked in the ERP" in item.message
    waiting.refresh_from_db()
    assert waiting.financial_status == "not_posted", "the posting queued before the block is withdrawn"
    assert not items(other).exists()
    assert Document.objects.get(pk=other.pk).financial_status == "posting"
    documents_revalidate_open()
    assert items(waiting).count() == 1, "checked again, still one item"


@pytest.fixture
def p2p(entity):
    clear_cache()
    Supplier.objects.create(entity=entity, code="V100", name="Contoso Hardware")
    PurchaseCategory.objects.create(code="IT-HW", name="IT hardware", gl_account="6110")
    Employee.objects.create(entity=entity, code="E0013", name="Rita Requester")
    return entity


def purchase_order(account: str) -> Document:
    rec = {
        "external_id": "bc-PO-1",
        "number": "PO-1",
        "entity": "NW-US",
        "vendor_number": "V100",
        "currency": "USD",
        "total": "1000.00",
        "order_date": date.today().isoformat(),
        "lines": [
            {
                "line_no": 1,
                "description": "Laptop",
                "account": account,
                "cost_center": "ENG",
                "quantity": "10",
                "unit_cost": "100.00",
                "amount": "1000.00",
            }
        ],
    }
    return p2p_documents_upsert(system="business_central", kind="purchase_order", records=[rec]).touched[0]


def supplier_invoice() -> Document:
    rec = {
        "external_id": "inv-1",
        "number": "INV-1",
        "supplier_code": "V100",
        "entity": "NW-US",
        "currency": "USD",
        "po_number": "PO-1",
        "invoice_date": date.today().isoformat(),
        "total": "1000.00",
        "lines": [{"line_no": 1, "po_line_no": 1, "description": "x", "quantity": "10", "unit_price": "100.00"}],
    }
    return p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[rec]).touched[0]


def test_a_supplier_invoice_is_judged_on_its_po_lines_account(p2p):
    purchase_order("6110")
    refuse("6110", "heading")
    doc = supplier_invoice()
    assert doc.lines.get().gl_account == "", "the invoice line names no account of its own"

    documents_validate(documents=[doc])

    item = items(doc).get()
    assert "'6110' is a heading account" in item.message and item.group.root_cause_key.endswith(":6110")


def test_a_requisition_on_a_blocked_account_is_caught_before_approval(p2p):
    refuse("6110", "blocked")
    need_by = (timezone.now().date() + timedelta(days=10)).isoformat()
    rec = {
        "external_id": "REQ-1",
        "number": "2001",
        "entity": "NW-US",
        "requester_code": "E0013",
        "title": "Laptops",
        "currency": "USD",
        "status": "pending_approval",
        "total": "2400.00",
        "lines": [
            {
                "description": "Laptop",
                "category": "IT-HW",
                "quantity": "2",
                "unit_price": "1200.00",
                "amount": "2400.00",
                "gl_account": "6110",
                "cost_center": "ENG",
                "supplier_code": "V100",
                "need_by_date": need_by,
            }
        ],
    }
    doc = p2p_documents_upsert(system="coupa", kind="requisition", records=[rec]).touched[0]
    documents_validate(documents=[doc])
    assert "'6110' is blocked in the ERP" in items(doc).get().message


def test_rules_load_accounts_once_per_batch_not_per_line(entity, django_assert_max_num_queries):
    refuse("8120", "blocked")
    docs = [expense_report(lines=[expense_line(gl_account="8120") for _ in range(5)]) for _ in range(4)]
    documents_validate(documents=docs)
    ctx = MasterDataContext.load()
    lines = {d.pk: list(d.lines.all()) for d in docs}

    with django_assert_max_num_queries(0):
        found = [f for d in docs for f in RULES[CODE](d, lines[d.pk], ctx)]
    assert len(found) == 20


# --- mapping rules -----------------------------------------------------------------------------------------


def gl_rule(target: str, **kw) -> MappingRule:
    fields = {"source_value": "8990", "entity": LegalEntity.objects.get(code="NW-US"), **kw}
    return MappingRule(field="gl_account", target_value=target, **fields)


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("blocked", "GL account '8120' is blocked in the ERP for NW-US"),
        ("heading", "GL account '8120' is a heading account, not a posting account for NW-US"),
        ("no direct posting", "GL account '8120' does not allow direct posting for NW-US"),
    ],
)
def test_a_rule_cannot_map_to_an_account_the_erp_refuses(entity, admin_user, how, words):
    refuse("8120", how)
    with pytest.raises(InvalidCorrection) as exc:
        mapping_rule_save(rule=gl_rule("8120"), actor=admin_user)
    assert words in str(exc.value)
    assert not MappingRule.objects.exists()


def test_a_rule_cannot_map_to_an_account_its_entity_does_not_have(entity, admin_user):
    master_data("NW-DE", "EUR")
    GLAccount.objects.create(entity=LegalEntity.objects.get(code="NW-DE"), code="4711")
    with pytest.raises(InvalidCorrection, match="'4711' is not a GL account of NW-US in the ERP"):
        mapping_rule_save(rule=gl_rule("4711"), actor=admin_user)
    # Any entity: refused if the account is refused in one of the entities that have it.
    refuse("8120", "blocked", "NW-DE")
    with pytest.raises(InvalidCorrection, match="blocked in the ERP for NW-DE"):
        mapping_rule_save(rule=gl_rule("8120", entity=None), actor=admin_user)


def form(**over):
    data = {
        "field": "gl_account",
        "source_system": "",
        "entity": LegalEntity.objects.get(code="NW-US").pk,
        "source_value": "8990",
        "pattern": "",
        "target_value": "8120",
        "effective_from": "",
        "effective_to": "",
        "active": "on",
        "note": "",
        "reason": "Old travel account is closed",
    }
    data.update(over)
    return data


def test_the_mapping_screen_refuses_a_blocked_target_with_a_readable_message(entity, client, admin_user):
    refuse("8120", "blocked")
    client.force_login(admin_user)

    saved = client.post("/mappings/save/", form(), HTTP_HX_REQUEST="true")

    html = saved.content.decode()
    assert saved.status_code == 200
    assert "GL account &#x27;8120&#x27; is blocked in the ERP for NW-US" in html
    assert "Choose a posting account" in html and 'id="impact"' in html
    assert "blocked in the ERP" in saved.headers["HX-Trigger"]
    assert not MappingRule.objects.exists()
    tested = client.post("/mappings/test/", form(), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="impact-problem"' in tested and "is blocked in the ERP" in tested


def test_hostile_targets_are_a_message_not_a_500(entity, client, admin_user):
    refuse("8120", "blocked")  # so that "81\x0020" read as 8120 is refused too
    client.force_login(admin_user)
    for target in ("81\x0020", "9" * 500, "<script>x</script>", "8100 "):
        for url in ("/mappings/test/", "/mappings/save/"):
            r = client.post(url, form(target_value=target), HTTP_HX_REQUEST="true")
            assert r.status_code == 200 and b"<script>x" not in r.content, (url, target)
    assert list(MappingRule.objects.values_list("target_value", flat=True)) == []


def test_a_rule_whose_account_the_erp_blocks_later_shows_it_on_the_screen(entity, client, admin_user, jobs_sent):
    mapping_rule_save(rule=gl_rule("8120"), actor=admin_user)
    client.force_login(admin_user)
    assert 'data-testid="refused-target"' not in client.get("/mappings/").content.decode()

    refuse("8120", "blocked")

    html = client.get("/mappings/").content.decode()
    assert 'data-testid="refused-target"' in html and "is blocked in the ERP (NW-US)" in html


def test_a_rule_from_the_blocked_account_to_an_open_one_resolves_its_group(entity, admin_user, jobs_sent):
    refuse("8120", "blocked")
    docs = [expense_report(lines=[expense_line(gl_account="8120", amount=Decimal("10.00"))]) for _ in range(3)]
    documents_validate(documents=docs)
    assert items().count() == 3

    run = mapping_rule_save(rule=gl_rule("8110", source_value="8120"), actor=admin_user)
    mapping_run_execute(run)

    assert not items().exists()
    assert set(Document.objects.get(pk=docs[0].pk).lines.values_list("gl_account", flat=True)) == {"8110"}


def test_an_item_offers_a_rule_that_recodes_its_whole_group(entity, client, admin_user):
    refuse("8120", "blocked")
    doc = expense_report(lines=[expense_line(gl_account="8120")])
    documents_validate(documents=[doc])
    item = items(doc).get()
    client.force_login(admin_user)

    html = client.get(f"/items/{item.pk}/").content.decode()

    assert 'data-testid="fix-all"' in html and "field=gl_account" in html and "source_value=8120" in html


# --- the analyst's fix ---------------------------------------------------------------------------------------


def test_an_analyst_recodes_the_line_to_an_account_the_erp_accepts_and_the_rule_passes(entity, client_as, jobs_sent):
    refuse("8120", "blocked")
    refuse("8130", "heading")
    doc = expense_report(lines=[expense_line(gl_account="8120")])
    documents_validate(documents=[doc])
    item = items(doc).get()
    analyst = client_as("ana", "Finance analysts")

    page = analyst.get(f"/items/{item.pk}/").content.decode()
    offered = page.split('data-testid="gl-account"')[1].split("</select>")[0]
    assert 'value="8110"' in offered and 'value="8120"' not in offered and 'value="8130"' not in offered

    def recode(account: str):
        return analyst.post(
            f"/items/{item.pk}/correct/",
            {"line": item.line_id, "field": "gl_account", "value": account, "reason": ""},
            HTTP_HX_REQUEST="true",
        )

    refused = recode("8130")  # typed by hand: still refused on the server
    assert refused.status_code == 200 and "heading" in refused["HX-Trigger"]
    assert recode("8110").status_code == 200
    item.line.refresh_from_db()
    assert item.line.gl_account == "8110"
    assert doc.events.filter(action="corrected", message__contains="8120 → 8110").exists()
    documents_revalidate([doc])
    item.refresh_from_db()
    assert item.status == "resolved"
