import pytest

from tests.factories import expense_line, expense_report, master_data
from workbench.errors import InvalidTransition, StaleUpdate
from workbench.models import CostCenter, ExceptionItem
from workbench.services.exception_items import exception_item_transition
from workbench.services.item_actions import exception_item_assign, exception_item_override
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def item():
    master_data()
    doc = expense_report(lines=[expense_line(cost_center="SALE")])
    documents_validate(documents=[doc])
    return ExceptionItem.objects.get(document=doc)


def test_it_resolves_only_when_the_rule_passes_again(item):
    CostCenter.objects.create(entity=item.entity, code="SALE", name="Sales (alias)")
    documents_validate(documents=[item.document])
    item.refresh_from_db()
    assert item.status == "resolved" and item.resolved_at is not None
    assert list(item.events.values_list("action", flat=True)) == ["raised", "rule_passed"]


def test_it_reopens_the_same_item_when_the_rule_fires_again(item):
    CostCenter.objects.create(entity=item.entity, code="SALE", name="Sales (alias)")
    documents_validate(documents=[item.document])
    CostCenter.objects.filter(code="SALE").delete()
    documents_validate(documents=[item.document])
    assert ExceptionItem.objects.filter(document=item.document).count() == 1
    item.refresh_from_db()
    assert item.status == "open" and item.resolved_at is None
    assert "reopened" in item.events.values_list("action", flat=True)


def test_override_needs_a_reason_and_is_terminal(item, analyst):
    with pytest.raises(InvalidTransition):
        exception_item_override(item=item, reason="  ", actor=analyst)
    exception_item_override(item=item, reason="Sales alias agreed with controller", actor=analyst)
    item.refresh_from_db()
    assert item.status == "overridden"
    with pytest.raises(InvalidTransition):
        exception_item_transition(item=item, to="open")


def test_a_stale_transition_is_refused(item):
    stale = ExceptionItem.objects.get(pk=item.pk)
    exception_item_transition(item=item, to="in_progress")
    with pytest.raises(StaleUpdate):
        exception_item_transition(item=stale, to="waiting")


def test_assigning_takes_the_item_and_is_recorded(item, analyst):
    exception_item_assign(item=item, assignee=analyst, actor=analyst)
    item.refresh_from_db()
    assert item.assignee == analyst and item.status == "in_progress"
    assert item.events.filter(action="assigned", actor=analyst).exists()


def test_the_database_refuses_an_unknown_status(item):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ExceptionItem.objects.filter(pk=item.pk).update(status="done")


def test_history_is_append_only(item):
    event = item.events.first()
    event.reason = "rewritten"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        item.events.all().delete()


def test_connection_secrets_can_come_from_the_environment(monkeypatch):
    from connectors.base import ConfigError
    from sync.health import resolve_secrets

    monkeypatch.setenv("BC_SECRET", "s3cret")
    assert resolve_secrets({"client_secret": "env:BC_SECRET", "page_size": 10}) == {
        "client_secret": "s3cret",
        "page_size": 10,
    }
    monkeypatch.delenv("BC_SECRET")
    with pytest.raises(ConfigError, match="BC_SECRET"):
        resolve_secrets({"client_secret": "env:BC_SECRET"})


def test_an_erp_refusal_cannot_be_overridden(analyst):
    from workbench.services.documents import document_financial_transition, document_mark_rejected

    master_data()
    doc = expense_report()
    document_financial_transition(document=doc, to="posting")
    document_mark_rejected(
        document=doc, erp_system="business_central", code="Application_DialogException", message="No."
    )
    item = ExceptionItem.objects.get(code="ERP_REJECTED")
    with pytest.raises(InvalidTransition, match="cannot be overridden"):
        exception_item_override(item=item, reason="please", actor=analyst)


def test_a_new_version_after_posting_is_flagged_not_posted_again(analyst):
    from tests.factories import expense_record
    from workbench.models import Document
    from workbench.services.documents import document_mark_posted, documents_upsert_from_source

    master_data()
    rec = expense_record()
    doc = documents_upsert_from_source(system="concur", records=[rec]).created[0]
    document_mark_posted(document=doc, erp_system="business_central", erp_id="g1", number="PPI-1")
    result = documents_upsert_from_source(system="concur", records=[{**rec, "version": "2"}])
    assert result.touched == []
    doc.refresh_from_db()
    assert doc.financial_status == "posted" and doc.version == "1"
    assert ExceptionItem.objects.get(code="CHANGED_AFTER_POSTING").document == doc
    # an older version arriving late changes nothing either
    assert documents_upsert_from_source(system="concur", records=[{**rec, "version": "0"}]).touched == []
    assert Document.objects.count() == 1


def test_a_new_version_keeps_the_history_of_items_on_replaced_lines():
    from tests.factories import expense_record
    from workbench.services.documents import documents_upsert_from_source

    master_data()
    rec = expense_record(lines=[expense_line(cost_center="")])
    doc = documents_upsert_from_source(system="concur", records=[rec]).created[0]
    documents_validate(documents=[doc])
    old = ExceptionItem.objects.get(document=doc)
    fixed = documents_upsert_from_source(system="concur", records=[{**rec, "version": "2", "lines": [expense_line()]}])
    documents_validate(documents=fixed.touched)
    old.refresh_from_db()
    assert old.status == "resolved" and old.line is None
    assert list(old.events.values_list("action", flat=True)) == ["raised", "superseded"]


def test_two_retries_at_once_queue_one_posting(analyst):
    from tests.conftest import make_connections
    from workbench.models import Document
    from workbench.services import postings

    master_data()
    make_connections("http://127.0.0.1:9", "http://127.0.0.1:9")
    doc = expense_report()
    stale = Document.objects.get(pk=doc.pk)  # a second task's view of the same report
    assert len(postings.postings_enqueue([doc])) == 1
    assert postings.postings_enqueue([stale]) == []
    assert doc.writes.count() == 1
