import pytest

from tests.factories import expense_line, expense_report, master_data
from workbench.models import ExceptionItem
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def entity():
    return master_data()


def codes(doc):
    return sorted(ExceptionItem.objects.filter(document=doc, status="open").values_list("code", flat=True))


def test_a_clean_report_raises_nothing_and_is_ready_to_post():
    doc = expense_report()
    assert documents_validate(documents=[doc]) == [doc]
    assert codes(doc) == []


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ({"cost_center": ""}, "MISSING_COST_CENTER"),
        ({"cost_center": "SALE"}, "UNKNOWN_COST_CENTER"),
        ({"date": "2026-09-14"}, "CLOSED_PERIOD"),
        ({"date": "2025-01-14"}, "CLOSED_PERIOD"),  # no period at all
        ({"tax_code": "VAT16"}, "INVALID_TAX_CODE"),
    ],
)
def test_each_line_rule_raises_its_code_and_blocks_posting(line, code):
    doc = expense_report(lines=[expense_line(), expense_line(**line)])
    assert documents_validate(documents=[doc]) == []
    assert codes(doc) == [code]
    item = ExceptionItem.objects.get(document=doc)
    assert item.line.line_no == 2
    assert item.amount_at_risk == doc.lines.get(line_no=2).amount
    assert item.kind == "business" and item.owner_team == "finance_expense"


def test_terminated_or_unknown_employee_is_inactive_employee():
    gone = expense_report(employee_code="E0002", employee_name="Gone Person")
    ghost = expense_report(employee_code="E9999", employee_name="Nobody")
    documents_validate(documents=[gone, ghost])
    assert codes(gone) == ["INACTIVE_EMPLOYEE"] and codes(ghost) == ["INACTIVE_EMPLOYEE"]
    assert "terminated" in ExceptionItem.objects.get(document=gone).message


def test_unknown_entity_is_its_own_exception_not_a_crash():
    doc = expense_report(entity="NW-XX")
    documents_validate(documents=[doc])
    assert codes(doc) == ["UNKNOWN_ENTITY"]


def test_revalidating_twice_does_not_duplicate_items():
    doc = expense_report(lines=[expense_line(cost_center="")])
    documents_validate(documents=[doc])
    documents_validate(documents=[doc])
    assert ExceptionItem.objects.filter(document=doc).count() == 1


def test_items_with_one_root_cause_share_a_group():
    a = expense_report(lines=[expense_line(cost_center="SALE")])
    b = expense_report(lines=[expense_line(cost_center="SALE"), expense_line(cost_center="ENGG")])
    documents_validate(documents=[a, b])
    sale = ExceptionItem.objects.filter(detail__value="SALE")
    assert sale.count() == 2 and sale.values("group").distinct().count() == 1
    assert sale.first().group.title == "Cost center not in ERP: SALE (NW-US)"
    assert ExceptionItem.objects.get(detail__value="ENGG").group != sale.first().group
