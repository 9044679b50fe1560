"""Period-end accruals booked in the ERP: the accrual and its reversal each once in the Business Central
sandbox (a real HTTP server, in-thread), however often they are asked for or delivered."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import requests
from django.db import DatabaseError, connection, transaction

from connectors.base import Rejected, WriteOp
from connectors.business_central import mapping
from connectors.business_central.mapping import MappingError
from sync import push
from sync.health import connector_for
from tests.conftest import make_person
from tests.factories import master_data
from tests.support.pipeline import drain_outbox
from tests.support.sandboxes import CREDS
from workbench.errors import InvalidTransition, WorkbenchError
from workbench.models import (
    AccrualJournal,
    AccrualJournalEvent,
    AuditRecord,
    Connection,
    ErpPosting,
    ExceptionItem,
    OutboundWrite,
)
from workbench.services.accruals import POST_JOURNAL, accrual_post
from workbench.services.audit import audit_seal_all, audit_verify
from workbench.services.item_actions import exception_item_retry
from workbench.services.p2p_documents import p2p_documents_upsert
from workbench.services.postings import write_dead

pytestmark = pytest.mark.django_db
PERIOD = "2026-11"  # open in the sandbox (TODAY is 2026-11-20), as is December


@pytest.fixture
def erp(erp_sandbox):
    return Connection.objects.create(
        name="Business Central (ERP)",
        kind="business_central",
        role="erp",
        config={"base_url": erp_sandbox[1], "environment": "sandbox", **CREDS},
    )


@pytest.fixture
def entity(db):
    return master_data("NW-US", "USD")


@pytest.fixture
def manager_us(entity):
    return make_person("mgr-us", "Finance managers", ["NW-US"])


def purchase_order(number, lines, currency="USD", entity="NW-US"):
    """A PO from the ERP with every line received in full and nothing invoiced: all of it to accrue."""
    rec = {
        "external_id": f"bc-{number}",
        "number": number,
        "entity": entity,
        "vendor_number": "V100",
        "currency": currency,
        "total": str(sum(q * Decimal(p) for q, p, *_ in lines)),
        "order_date": date(2026, 11, 2).isoformat(),
        "lines": [
            {
                "line_no": i,
                "description": f"Item {i}",
                "account": account,
                "cost_center": cost_center,
                "quantity": str(q),
                "unit_cost": p,
                "amount": str(q * Decimal(p)),
            }
            for i, (q, p, account, cost_center) in enumerate(lines, start=1)
        ],
    }
    doc = p2p_documents_upsert(system="business_central", kind="purchase_order", records=[rec]).touched[0]
    for ln in doc.lines.all():
        p2p_documents_upsert(
            system="coupa",
            kind="goods_receipt",
            records=[
                {
                    "external_id": f"r-{number}-{ln.line_no}",
                    "po_number": number,
                    "po_line_no": ln.line_no,
                    "quantity": str(ln.quantity),
                    "received_on": date(2026, 11, 10).isoformat(),
                }
            ],
        )
    return doc


@pytest.fixture
def received(erp, entity):
    purchase_order("PO-A1", [(10, "100.00", "6110", "ENG"), (2, "50.00", "6110", "ENG"), (4, "25.00", "6130", "FIN")])
    purchase_order("PO-A2", [(3, "10.00", "6110", "ENG")], currency="EUR")  # no rate: left out, not converted
    return entity


def gl_entries(erp_sandbox, number):
    return [e for e in erp_sandbox[0].store.all("generalLedgerEntries") if e["documentNumber"] == number]


def test_a_manager_posts_the_accrual_and_its_reversal_once_each_in_the_erp(received, erp_sandbox, manager_us):
    journals, changed = accrual_post(entity=received, period=PERIOD, actor=manager_us)
    accrual = journals[0]
    assert changed and accrual.status == "queued"
    # 10*100 + 2*50 on ENG/6110, 4*25 on FIN/6130; the EUR order is listed as left out.
    assert accrual.amount == Decimal("1200.00") and accrual.currency == "USD"
    assert {(ln["cost_center"], ln["account"], ln["amount"]) for ln in accrual.lines} == {
        ("ENG", "6110", "1100.00"),
        ("FIN", "6130", "100.00"),
    }
    assert "EUR" in accrual.message and "no rate" in accrual.message

    accrual_post(entity=received, period=PERIOD, actor=manager_us)  # asked twice: still one write
    assert OutboundWrite.objects.filter(action=POST_JOURNAL).count() == 1
    drain_outbox()

    accrual.refresh_from_db()
    reversal = AccrualJournal.objects.get(entity=received, period=PERIOD, kind="reversal")
    assert accrual.status == "posted" and accrual.posted_at and accrual.erp_number == "ACR-NW-US-202611"
    assert reversal.status == "posted" and reversal.document_number == "REV-NW-US-202611"
    assert reversal.posting_date == date(2026, 12, 1) and reversal.amount == Decimal("-1200.00")

    booked = gl_entries(erp_sandbox, "ACR-NW-US-202611")
    assert len(booked) == 4 and {e["postingDate"] for e in booked} == {"2026-11-30"}
    assert sum(Decimal(str(e["debitAmount"])) for e in booked) == sum(Decimal(str(e["creditAmount"])) for e in booked)
    assert sum(Decimal(str(e["creditAmount"])) for e in booked if e["accountNumber"] == "2120") == Decimal("1200")
    reversed_ = gl_entries(erp_sandbox, "REV-NW-US-202611")
    assert len(reversed_) == 4 and {e["postingDate"] for e in reversed_} == {"2026-12-01"}
    assert sum(Decimal(str(e["debitAmount"])) for e in reversed_ if e["accountNumber"] == "2120") == Decimal("1200")
    assert not erp_sandbox[0].store.all("journalLines"), "the journal is empty after posting"

    postings = {p.kind: p for p in ErpPosting.objects.filter(entity=received)}
    assert postings["accrual"].amount == Decimal("1200") and postings["accrual"].period == "2026-11"
    assert postings["accrual_reversal"].amount == Decimal("-1200") and postings["accrual_reversal"].period == "2026-12"

    # Asked again once everything is booked: nothing new reaches the ERP.
    _, changed = accrual_post(entity=received, period=PERIOD, actor=manager_us)
    drain_outbox()
    assert not changed and len(gl_entries(erp_sandbox, "ACR-NW-US-202611")) == 4


def test_an_auditor_sees_who_posted_which_accrual_and_when(received, erp_sandbox, manager_us):
    accrual_post(entity=received, period=PERIOD, actor=manager_us)
    drain_outbox()
    events = list(AccrualJournalEvent.objects.select_related("journal").order_by("id"))
    requested = next(e for e in events if e.action == "requested" and e.journal.kind == "accrual")
    assert requested.actor == manager_us and "ACR-NW-US-202611" in requested.message
    assert [e.action for e in events if e.journal.kind == "reversal"] == ["requested", "posted"]
    audited = AuditRecord.objects.filter(source="workbench_accrualjournalevent")
    assert audited.count() == len(events) and audited.filter(actor_id=manager_us.pk).exists()
    with pytest.raises(TypeError):
        AccrualJournalEvent.objects.filter(pk=requested.pk).update(actor=None)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:  # nor round the ORM
        cur.execute("UPDATE workbench_accrualjournalevent SET actor_id = NULL WHERE id = %s", [requested.pk])
    audit_seal_all()
    assert audit_verify().ok


def test_a_worker_that_dies_after_the_erp_call_books_nothing_twice(received, erp_sandbox, manager_us, monkeypatch):
    accrual_post(entity=received, period=PERIOD, actor=manager_us)
    write = OutboundWrite.objects.get(action=POST_JOURNAL)
    # The worker claims the write and the ERP posts it, then the worker dies before recording the answer.
    claimed, _lease = push.claim_next()
    connector_for(write.connection).write(
        WriteOp(claimed.action, claimed.payload), idempotency_key=claimed.idempotency_key
    )
    assert len(gl_entries(erp_sandbox, "ACR-NW-US-202611")) == 4
    OutboundWrite.objects.filter(pk=write.pk).update(lease_until="2000-01-01T00:00:00Z")  # its lease runs out

    drain_outbox()  # the outbox delivers it again, with the same key
    write.refresh_from_db()
    assert write.status == "done" and write.uncertain and "Already posted" in write.result["message"]
    assert len(gl_entries(erp_sandbox, "ACR-NW-US-202611")) == 4
    assert len(gl_entries(erp_sandbox, "REV-NW-US-202611")) == 4
    assert ErpPosting.objects.filter(kind="accrual").count() == 1
    assert ErpPosting.objects.filter(kind="accrual_reversal").count() == 1


def test_lines_left_behind_by_a_failed_attempt_are_replaced_not_doubled(received, erp_sandbox, manager_us):
    journals, _ = accrual_post(entity=received, period=PERIOD, actor=manager_us)
    write = OutboundWrite.objects.get(action=POST_JOURNAL)
    connector = connector_for(write.connection)
    # An attempt that wrote its first line and died before posting.
    company = connector._company_named("NW-US")
    journal = connector._journal_named(company, "ACCRUALS")
    body = {"accountNumber": "6110", "postingDate": "2026-11-30", "documentNumber": "ACR-NW-US-202611",
            "amount": 1100, "dimensionSetLines": [{"code": "DEPARTMENT", "valueCode": "ENG"}]}  # fmt: skip
    connector.http.request("POST", f"companies({company['id']})/journals({journal['id']})/journalLines", json_body=body)

    drain_outbox()
    booked = gl_entries(erp_sandbox, "ACR-NW-US-202611")
    assert sum(Decimal(str(e["debitAmount"])) for e in booked) == Decimal("1200")


def test_a_closed_period_is_refused_shown_and_raised_as_an_item_and_can_be_posted_again(
    received, erp_sandbox, manager_us
):
    close = {"change": [{"stream": "accounting_periods", "entity": "NW-US", "code": "2026-11", "field": "closed",
                         "value": True}]}  # fmt: skip
    assert requests.post(f"{erp_sandbox[1]}/sandbox/drift", json=close, timeout=5).status_code == 200
    accrual_post(entity=received, period=PERIOD, actor=manager_us)
    drain_outbox()

    accrual = AccrualJournal.objects.get(kind="accrual")
    assert accrual.status == "refused" and "allowed posting dates" in accrual.message
    assert not AccrualJournal.objects.filter(kind="reversal").exists(), "no reversal without its accrual"
    assert not gl_entries(erp_sandbox, "ACR-NW-US-202611") and not erp_sandbox[0].store.all("journalLines")
    item = ExceptionItem.objects.get(code="ERP_REJECTED", detail__accrual_journal_id=accrual.pk)
    assert item.status == "open" and item.entity == received and "ACR-NW-US-202611" in item.message

    with pytest.raises(InvalidTransition, match="accruals screen"):  # not re-posted by whoever works the item
        exception_item_retry(item=item, actor=make_person("ann", "Finance analysts"))

    reopen = {"change": [{**close["change"][0], "value": False}]}
    assert requests.post(f"{erp_sandbox[1]}/sandbox/drift", json=reopen, timeout=5).status_code == 200
    _, changed = accrual_post(entity=received, period=PERIOD, actor=manager_us)
    drain_outbox()
    accrual.refresh_from_db()
    item.refresh_from_db()
    assert changed and accrual.status == "posted" and accrual.attempt == 2
    assert item.status == "resolved"
    assert len(gl_entries(erp_sandbox, "ACR-NW-US-202611")) == 4
    assert len(gl_entries(erp_sandbox, "REV-NW-US-202611")) == 4


def test_the_erp_refuses_an_unknown_department_and_books_nothing(erp, entity, erp_sandbox, manager_us):
    purchase_order("PO-X", [(1, "500.00", "6110", "NOSUCHCC"), (1, "10.00", "6130", "ENG")])
    accrual_post(entity=entity, period=PERIOD, actor=manager_us)
    drain_outbox()
    accrual = AccrualJournal.objects.get(kind="accrual")
    assert accrual.status == "refused" and "NOSUCHCC" in accrual.message
    assert not gl_entries(erp_sandbox, "ACR-NW-US-202611") and not erp_sandbox[0].store.all("journalLines")


def test_nothing_to_accrue_and_a_malformed_period_are_clear_errors(erp, entity, manager_us):
    with pytest.raises(WorkbenchError, match="nothing to accrue"):
        accrual_post(entity=entity, period=PERIOD, actor=manager_us)
    for period in ("2026-13", "26-11", "2026-11\x00", ""):
        with pytest.raises(WorkbenchError, match="YYYY-MM"):
            accrual_post(entity=entity, period=period, actor=manager_us)
    assert not AccrualJournal.objects.exists() and not OutboundWrite.objects.exists()


def test_the_connector_reads_gl_entries_and_refuses_a_document_number_too_long(received, erp_sandbox, manager_us):
    accrual_post(entity=received, period=PERIOD, actor=manager_us)
    drain_outbox()
    connector = connector_for(Connection.objects.get(role="erp"))
    records = [r for page in connector.read("gl_entries", None) for r in page.records]
    ours = [r for r in records if r["document_number"] == "ACR-NW-US-202611"]
    assert len(ours) == 4 and all(r["entity"] == "NW-US" for r in ours)
    assert sum(r["debit"] for r in ours) == Decimal("1200") == sum(r["credit"] for r in ours)
    payload = {"entity": "NW-US", "journal": "ACCRUALS", "document_number": "X" * 21, "posting_date": "2026-11-30",
               "currency": "USD", "lines": [{"account": "6110", "cost_center": "ENG", "amount": "1"}]}  # fmt: skip
    with pytest.raises(Rejected, match="longer than 20"):
        connector.write(WriteOp(POST_JOURNAL, payload), idempotency_key="k")


def test_a_journal_the_outbox_gave_up_on_is_shown_as_not_delivered_and_can_be_posted_again(
    received, erp_sandbox, manager_us
):
    accrual_post(entity=received, period=PERIOD, actor=manager_us)
    write = OutboundWrite.objects.get(action=POST_JOURNAL)
    OutboundWrite.objects.filter(pk=write.pk).update(status="dead")
    write_dead(write, attempts=8, error="TransientError: Business Central timed out")
    accrual = AccrualJournal.objects.get(kind="accrual")
    assert accrual.status == "failed" and "timed out" in accrual.message
    assert ExceptionItem.objects.get(detail__accrual_journal_id=accrual.pk).status == "open"

    _, changed = accrual_post(entity=received, period=PERIOD, actor=manager_us)
    drain_outbox()
    accrual.refresh_from_db()
    assert changed and accrual.status == "posted" and accrual.attempt == 2
    assert ExceptionItem.objects.get(detail__accrual_journal_id=accrual.pk).status == "resolved"
    assert len(gl_entries(erp_sandbox, "ACR-NW-US-202611")) == 4


def test_the_connector_never_posts_another_documents_lines_and_cleans_up_after_a_refusal(erp, erp_sandbox):
    connector = connector_for(erp)
    company = connector._company_named("NW-US")
    journal = connector._journal_named(company, "ACCRUALS")
    lines_path = f"companies({company['id']})/journals({journal['id']})/journalLines"
    payload = {"entity": "NW-US", "journal": "ACCRUALS", "document_number": "ACR-NW-US-202611",
               "posting_date": "2026-11-30", "currency": "USD",
               "lines": [{"account": "6110", "cost_center": "ENG", "amount": "10.00", "description": "ok"},
                         {"account": "9999", "cost_center": "ENG", "amount": "5.00", "description": "no such account"}]}  # fmt: skip
    with pytest.raises(Rejected) as refused:
        connector.write(WriteOp(POST_JOURNAL, payload), idempotency_key="k1")
    assert refused.value.field == "account" and refused.value.value == "9999"
    assert not erp_sandbox[0].store.all("journalLines"), "the first line was taken out again"

    other = {"accountNumber": "6110", "postingDate": "2026-10-31", "documentNumber": "ACR-NW-US-202610",
             "amount": 7, "dimensionSetLines": [{"code": "DEPARTMENT", "valueCode": "ENG"}]}  # fmt: skip
    connector.http.request("POST", lines_path, json_body=other)
    payload["lines"] = payload["lines"][:1]
    with pytest.raises(Rejected, match="ACR-NW-US-202610"):
        connector.write(WriteOp(POST_JOURNAL, payload), idempotency_key="k2")
    assert not erp_sandbox[0].store.all("generalLedgerEntries")
    assert [ln["documentNumber"] for ln in erp_sandbox[0].store.all("journalLines")] == ["ACR-NW-US-202610"]


@pytest.mark.parametrize(
    "raw",
    [
        {"id": "e1", "entryNumber": "1", "postingDate": "2026-11-30", "accountNumber": "6110", "debitAmount": 1,
         "creditAmount": 0},
        {"id": "e1", "entryNumber": 1, "postingDate": "2026-11-30", "accountNumber": "6110", "debitAmount": "NaN",
         "creditAmount": 0},
        {"id": "e1", "entryNumber": 1, "postingDate": "30.11.2026", "accountNumber": "6110", "debitAmount": 1,
         "creditAmount": 0},
        ["not", "an", "entry"],
    ],
)  # fmt: skip
def test_a_malformed_gl_entry_is_a_mapping_error_not_a_crash(raw):
    with pytest.raises(MappingError):
        mapping.gl_entry(raw, "NW-US")
