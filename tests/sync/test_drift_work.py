"""Drift is work: the nightly reconciliation raises items a person fixes, proves the books, and forgets
old detail. Against the Business Central sandbox (in-thread, real HTTP) for master data, expense
reports and purchase invoices; a small fake connector for the credit memo and journal streams.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from connectors.base import Page, StreamSpec
from sync import reconcile
from sync.models import DriftRecord, ProofLine, ReconciliationRun, SyncCursor
from sync.reconcile_postings import reconcile_postings
from sync.tasks import pull_stream_full_task
from tests.conftest import make_connections, make_person
from tests.support.pipeline import drain_outbox, full_sync
from workbench.models import AuditRecord, CostCenter, ErpPosting, ExceptionItem, LegalEntity, OutboundWrite
from workbench.money import fmt
from workbench.services.reconciliation_items import drift_pull_again

pytestmark = pytest.mark.django_db


def plant(erp_sandbox, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"{erp_sandbox[1]}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def reconcile_now(conn) -> ReconciliationRun:
    run = reconcile.run_reconciliation(ReconciliationRun.objects.create(connection=conn, triggered_by="test"))
    assert run.status == "succeeded", run.message
    return run


def items(code: str):
    return ExceptionItem.objects.filter(code=code)


@pytest.fixture
def posted(conns):
    """Both sandboxes synced once: master data in, clean expense reports posted to the ERP."""
    erp, expense = conns
    full_sync(erp, expense)
    assert ErpPosting.objects.count() > 3
    erp.refresh_from_db()
    return erp


# --- master-data drift -------------------------------------------------------------------------------


def test_planted_master_data_drift_is_one_item_and_accepting_the_erps_values_resolves_it(
    posted, erp_sandbox, client_as
):
    erp = posted
    clean = reconcile_now(erp)
    assert not items("RECONCILIATION_DRIFT").exists() and not items("POSTING_DRIFT").exists()
    assert clean.proof.exists()

    a, b = CostCenter.objects.filter(entity__code="NW-US").order_by("code")[:2]
    plant(
        erp_sandbox,
        "/sandbox/drift",
        {
            "change": [
                {"stream": "cost_centers", "entity": "NW-US", "code": a.code, "field": "name", "value": "Renamed A"},
                {"stream": "cost_centers", "entity": "NW-US", "code": b.code, "field": "name", "value": "Renamed B"},
            ]
        },
    )
    run = reconcile_now(erp)

    item = items("RECONCILIATION_DRIFT").get()  # one per connection and stream, naming both records
    assert item.kind == "technical" and item.status == "open" and item.connection == erp
    assert f"NW-US/{a.code} (name)" in item.message and f"NW-US/{b.code}" in item.message
    assert item.detail["stream"] == "cost_centers" and item.detail["count"] == 2
    assert {r["key"]: r["diffs"]["name"][1] for r in item.detail["records"]} == {
        f"NW-US/{a.code}": "Renamed A",
        f"NW-US/{b.code}": "Renamed B",
    }
    assert item.root_cause_key.endswith(f"{erp.name} · cost centers")
    assert item.group.title == f"ERP master data differs from ours: {erp.name} · cost centers"
    assert str(run.pk) in item.message

    # An analyst does finance work, not this; an engineer takes the ERP's values.
    assert client_as("ana", "Finance analysts").post(f"/items/{item.pk}/accept-erp/").status_code == 403
    engineer = client_as("eng", "Integration engineers")
    response = engineer.post(f"/items/{item.pk}/accept-erp/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "2 records applied" in response["HX-Trigger"]
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.name, b.name) == ("Renamed A", "Renamed B")
    item.refresh_from_db()
    assert item.status == "waiting"
    event = item.events.get(action="erp_values_accepted")
    assert event.actor.username == "eng"
    assert AuditRecord.objects.get(action="erp_values_accepted", row_id=str(item.pk)).actor_name == "eng"

    after = reconcile_now(erp)
    item.refresh_from_db()
    assert item.status == "resolved"
    assert f"#{after.pk}" in item.events.get(action="reconciled").reason
    assert not after.drift.exists()


def test_the_item_reopens_when_the_drift_comes_back_and_pull_again_reads_the_stream_in_full(
    posted, erp_sandbox, jobs_sent
):
    erp = posted
    cc = CostCenter.objects.filter(entity__code="NW-DE").order_by("code").first()
    change = {"stream": "cost_centers", "entity": "NW-DE", "code": cc.code, "field": "name"}
    plant(erp_sandbox, "/sandbox/drift", {"change": [{**change, "value": "First"}]})
    reconcile_now(erp)
    item = items("RECONCILIATION_DRIFT").get()
    cursor = SyncCursor.objects.get(connection=erp, stream="cost_centers").value
    engineer = make_person("eng", "Integration engineers")
    drift_pull_again(item=item, actor=engineer)
    assert ("sync.pull_stream_full", {"connection_id": erp.pk, "stream": "cost_centers"}) in jobs_sent
    assert pull_stream_full_task(erp.pk, "cost_centers") == "succeeded"
    cc.refresh_from_db()
    assert cc.name == "First"
    assert SyncCursor.objects.get(connection=erp, stream="cost_centers").value == cursor  # not moved

    reconcile_now(erp)
    item.refresh_from_db()
    assert item.status == "resolved"
    plant(erp_sandbox, "/sandbox/drift", {"change": [{**change, "value": "Second"}]})
    reconcile_now(erp)
    item.refresh_from_db()
    assert item.status == "open"  # the same item, reopened: one per connection and stream
    assert items("RECONCILIATION_DRIFT").count() == 1
    assert item.events.filter(action="reopened").exists()


def test_pull_again_of_something_that_is_no_stream_is_skipped_not_a_crash(posted):
    assert pull_stream_full_task(posted.pk, "../etc/passwd\x00") == "skipped"


# --- posted documents ------------------------------------------------------------------------------------


def test_a_lost_and_a_retotaled_invoice_raise_posting_drift_repost_and_correction_resolve_them(
    posted, erp_sandbox, client_as
):
    erp = posted
    lost, changed = ErpPosting.objects.order_by("id")[:2]
    before = {(p.entity_id, p.period, p.currency): p for p in ErpPosting.objects.all()}
    assert before
    original_total = next(
        d["totalAmountIncludingTax"] for d in erp_sandbox[0].store.all("purchaseInvoices") if d["id"] == changed.erp_id
    )
    plant(
        erp_sandbox,
        "/sandbox/posted-drift",
        {"delete": [{"id": lost.erp_id}], "change": [{"id": changed.erp_id, "total": str(changed.amount + 7)}]},
    )
    run = reconcile_now(erp)

    found = {i.document_id: i for i in items("POSTING_DRIFT")}
    assert set(found) == {lost.document_id, changed.document_id}
    gone, more = found[lost.document_id], found[changed.document_id]
    assert gone.kind == "business" and gone.detail["why"] == "missing" and gone.detail["repostable"]
    assert gone.amount_at_risk == lost.amount and gone.currency == lost.currency
    assert more.detail["why"] == "amount" and more.amount_at_risk == Decimal(7) and not more.detail["repostable"]
    # The proof shows it too: the lines of the two documents are off by exactly their differences.
    off = {(ln.entity_id, ln.period, ln.currency): ln.difference for ln in run.proof.exclude(difference=0)}
    expected: dict = {}
    for p, diff in ((lost, lost.amount), (changed, Decimal(-7))):
        key = (p.entity_id, p.period, p.currency)
        expected[key] = expected.get(key, 0) + diff
    assert off == {k: v for k, v in expected.items() if v}

    # Re-posting a total the ERP holds otherwise is refused with words, not a 500.
    analyst = client_as("ana", "Finance analysts")
    refused = analyst.post(f"/items/{more.pk}/repost/", HTTP_HX_REQUEST="true")
    assert refused.status_code == 200 and "correct the document in the ERP" in refused["HX-Trigger"]

    ok = analyst.post(f"/items/{gone.pk}/repost/", HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and "Posting again as" in ok["HX-Trigger"]
    gone.refresh_from_db()
    assert gone.status == "waiting"
    write = OutboundWrite.objects.get(pk=gone.detail["repost_write_id"])
    assert write.idempotency_key != OutboundWrite.objects.get(pk=lost.write_id).idempotency_key
    # Asked twice, it is posted once.
    again = analyst.post(f"/items/{gone.pk}/repost/", HTTP_HX_REQUEST="true")
    assert "already on its way" in again["HX-Trigger"]
    lost.refresh_from_db()
    assert lost.superseded_at is None  # still counted: the books are short until the ERP books it again
    drain_outbox()
    lost.refresh_from_db()
    assert lost.superseded_at is not None  # kept as history
    successor = ErpPosting.objects.get(write=write)
    assert successor.document_id == lost.document_id and successor.erp_id != lost.erp_id
    doc = successor.document
    assert doc.erp_document_number == successor.erp_number != lost.erp_number  # the document shows the new one
    assert doc.events.filter(action="reposted", message__contains=lost.erp_number).exists()

    plant(erp_sandbox, "/sandbox/posted-drift", {"change": [{"id": changed.erp_id, "total": str(original_total)}]})
    final = reconcile_now(erp)
    for item in found.values():
        item.refresh_from_db()
        assert item.status == "resolved", item.message
    assert not final.proof.exclude(difference=0).exists()
    assert not items("POSTING_DRIFT").filter(status__in=["open", "in_progress", "waiting"]).exists()


def test_a_canceled_invoice_is_drift_and_out_of_scope_people_do_not_see_it(posted, erp_sandbox, client_as):
    erp = posted
    posting = ErpPosting.objects.filter(entity__code="NW-US").order_by("id").first()
    assert posting is not None
    plant(erp_sandbox, "/sandbox/posted-drift", {"cancel": [{"id": posting.erp_id}]})
    reconcile_now(erp)
    item = items("POSTING_DRIFT").get()
    assert item.detail["why"] == "canceled" and item.entity_id == posting.entity_id

    # The proof on the reconciliation page: both sums and the difference of that entity, period and currency.
    page = client_as("ana", "Finance analysts").get("/sync/reconciliation/").content.decode()
    row = page.split(f'data-proof="NW-US:{posting.period}:{posting.currency}"')[1].split("</tr>")[0]
    assert 'class="late"' in row  # a line that does not tie out stands out
    assert f'data-testid="proof-difference">{fmt(posting.amount, posting.currency)}<' in row
    line = ProofLine.objects.get(run__connection=erp, entity=posting.entity, period=posting.period,
                                 currency=posting.currency)  # fmt: skip
    assert line.difference == posting.amount and line.ours - line.erp == posting.amount
    assert fmt(line.ours, line.currency) in row and fmt(line.erp, line.currency) in row

    german = client_as("ana.de", "Finance analysts", ["NW-DE"])
    assert german.get(f"/items/{item.pk}/").status_code == 404
    assert german.post(f"/items/{item.pk}/repost/").status_code == 404
    page = german.get("/sync/reconciliation/").content.decode()
    assert 'data-proof="NW-US:' not in page and 'data-proof="NW-DE:' in page
    item.refresh_from_db()
    assert item.status == "open"


def test_the_sandbox_refuses_bad_posted_drift_and_plants_nothing(posted, erp_sandbox):
    posting = ErpPosting.objects.order_by("id").first()
    for body in (
        {"delete": [{"id": "no-such-invoice"}]},
        {"change": [{"id": posting.erp_id, "total": "lots"}]},
        {"delete": [{}]},
        {"delete": [{"id": posting.erp_id}], "change": [{"id": posting.erp_id, "total": "1e400"}]},
    ):
        with pytest.raises(urllib.error.HTTPError) as err:
            plant(erp_sandbox, "/sandbox/posted-drift", body)
        assert err.value.code == 400
    assert any(d["id"] == posting.erp_id for d in erp_sandbox[0].store.all("purchaseInvoices"))


# --- credit memos and journals, through a small fake connector -------------------------------------------


class FakeErp:
    """Offers the streams of the shared contract that the BC connector is still gaining."""

    def __init__(self, streams: dict[str, list[dict]]):
        self.streams = streams

    def discover(self):
        return [StreamSpec(name, name) for name in self.streams]

    def read(self, stream, cursor):
        yield Page(records=list(self.streams[stream]), next_cursor=None)


@pytest.fixture
def ledger(db):
    erp, _ = make_connections("http://127.0.0.1:9", "http://127.0.0.1:9")
    entity = LegalEntity.objects.create(code="NW-DE", name="Northwind DE", currency="EUR")
    writes = iter(range(1, 100))

    def post(kind, amount, erp_id, *, period="2026-11", currency="EUR"):
        write = OutboundWrite.objects.create(
            connection=erp, action=kind, idempotency_key=f"k{next(writes)}", payload={}, status="done"
        )
        return ErpPosting.objects.create(
            kind=kind, connection=erp, entity=entity, write=write, erp_id=erp_id, reference=erp_id,
            amount=Decimal(amount), currency=currency, posting_date=f"{period}-15", period=period,
        )  # fmt: skip

    return erp, entity, post


def credit_memo(erp_id, total, status="open"):
    return {"external_id": erp_id, "entity": "NW-DE", "number": "PCM-1", "status": status, "total": total,
            "currency": "EUR", "posting_date": "2026-11-15", "invoice_id": "", "invoice_number": ""}  # fmt: skip


def entry(n, doc, debit, credit="0"):
    return {"external_id": f"e{n}", "entity": "NW-DE", "entry_number": n, "document_number": doc,
            "posting_date": "2026-11-30", "account": "6110", "debit": debit, "credit": credit, "description": ""}  # fmt: skip


def test_credit_memos_and_accrual_journals_tie_out_and_a_lost_debit_is_posting_drift(ledger):
    erp, entity, post = ledger
    post("credit_memo", "-120.00", "CM-GUID")
    post("accrual", "300.00", "ACR-2026-11")
    post("accrual_reversal", "-300.00", "ACR-2026-11-R", period="2026-12")
    journal = [
        entry(1, "ACR-2026-11", "100.00"),
        entry(2, "ACR-2026-11", "200.00"),
        entry(3, "ACR-2026-11", "0", "300"),
    ]
    reversal = [entry(4, "ACR-2026-11-R", "300.00")]
    fake = FakeErp({"purchase_credit_memos": [credit_memo("CM-GUID", "120.00")], "gl_entries": journal + reversal})

    run = ReconciliationRun.objects.create(connection=erp)
    result = reconcile_postings(run, fake)
    assert (result.checked, result.drifted, result.unequal) == (3, 0, 0)
    lines = {(ln.period): (ln.ours, ln.erp) for ln in run.proof.all()}
    assert lines == {"2026-11": (Decimal(180), Decimal(180)), "2026-12": (Decimal(-300), Decimal(-300))}
    assert not items("POSTING_DRIFT").exists()

    fake.streams["gl_entries"] = journal[1:] + reversal  # the ERP lost one line of the accrual
    fake.streams["purchase_credit_memos"] = [credit_memo("CM-GUID", "120.00", status="canceled")]
    second = ReconciliationRun.objects.create(connection=erp)
    reconcile_postings(second, fake)
    found = {i.detail["kind"]: i for i in items("POSTING_DRIFT")}
    assert set(found) == {"accrual", "credit_memo"}
    assert found["accrual"].amount_at_risk == Decimal(100) and found["accrual"].entity_id == entity.pk
    assert found["credit_memo"].detail["why"] == "canceled" and found["credit_memo"].amount_at_risk == Decimal(120)
    nov = second.proof.get(period="2026-11")
    assert (nov.ours, nov.erp, nov.difference) == (Decimal(180), Decimal(200), Decimal(-20))

    fake.streams["gl_entries"] = journal + reversal
    fake.streams["purchase_credit_memos"] = [credit_memo("CM-GUID", "120.00")]
    reconcile_postings(ReconciliationRun.objects.create(connection=erp), fake)
    assert set(items("POSTING_DRIFT").values_list("status", flat=True)) == {"resolved"}


def test_a_kind_the_connector_cannot_read_is_left_unchecked_not_reported_lost(ledger):
    erp, _, post = ledger
    post("credit_memo", "-50.00", "CM-2")
    run = ReconciliationRun.objects.create(connection=erp)
    result = reconcile_postings(run, FakeErp({"purchase_invoices": []}))
    assert result.unchecked == {"purchase_credit_memos": 1} and result.checked == 0
    assert "not checked" in result.message()
    assert not items("POSTING_DRIFT").exists() and not run.proof.exists()


def test_a_malformed_erp_amount_is_drift_for_a_person_not_a_crash(ledger):
    erp, _, post = ledger
    post("credit_memo", "-50.00", "CM-3")
    fake = FakeErp({"purchase_credit_memos": [credit_memo("CM-3", "fifty\x00")]})
    reconcile_postings(ReconciliationRun.objects.create(connection=erp), fake)
    assert items("POSTING_DRIFT").get().detail["why"] == "missing"


# --- retention -----------------------------------------------------------------------------------------


def test_retention_prunes_only_the_detail_of_older_runs(ledger, client_as):
    erp, entity, _ = ledger
    now = timezone.now()
    runs = []
    for age in (100, 40, 5):
        run = ReconciliationRun.objects.create(connection=erp, started_at=now - timedelta(days=age))
        DriftRecord.objects.create(run=run, stream="cost_centers", key=f"NW-DE/{age}", kind="changed", diffs={})
        ProofLine.objects.create(
            run=run, entity=entity, period="2026-11", currency="EUR", ours=1, erp=1, difference=0, documents=1
        )
        runs.append(run)

    assert reconcile.reconciliation_prune(connection=erp) == 1  # the default keeps 90 days
    assert [r.drift.count() + r.proof.count() for r in runs] == [0, 2, 2]

    assert (
        client_as("ana", "Finance analysts").post("/sync/reconciliation/retention/", {"retention_days": 1}).status_code
        == 403
    )
    admin = client_as("adm", "Administrators")
    for bad in ("0", "abc", "99999999999", "-5", "\x00", ""):
        response = admin.post("/sync/reconciliation/retention/", {"retention_days": bad}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and '"level": "error"' in response["HX-Trigger"], bad
    response = admin.post("/sync/reconciliation/retention/", {"retention_days": "30"}, HTTP_HX_REQUEST="true")
    assert "kept 30 days" in response["HX-Trigger"]
    assert AuditRecord.objects.filter(source="workbench.ReconciliationSettings", actor_name="adm").exists()

    assert reconcile.reconciliation_prune(connection=erp) == 1
    assert [r.drift.count() + r.proof.count() for r in runs] == [0, 0, 2]
    assert ReconciliationRun.objects.filter(pk__in=[r.pk for r in runs]).count() == 3  # the runs stay


def test_a_paid_document_is_not_posted_again_and_a_refused_repost_goes_back_to_a_person(posted, erp_sandbox, client_as):
    erp = posted
    paid, refused = ErpPosting.objects.filter(kind="expense_report").order_by("id")[:2]
    paid.document.__class__.objects.filter(pk=paid.document_id).update(financial_status="paid")
    plant(erp_sandbox, "/sandbox/posted-drift", {"delete": [{"id": paid.erp_id}, {"id": refused.erp_id}]})
    reconcile_now(erp)
    by_doc = {i.document_id: i for i in items("POSTING_DRIFT")}
    analyst = client_as("ana", "Finance analysts")

    # Posting a paid document again would open a second payable for it: refused, in words.
    item = by_doc[paid.document_id]
    assert not item.detail["repostable"]
    answer = analyst.post(f"/items/{item.pk}/repost/", HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and "correct the document in the ERP" in answer["HX-Trigger"]
    assert not OutboundWrite.objects.filter(payload__reposted_from__isnull=False).exists()

    # The ERP refuses the other re-post (here: its account is blocked there): the document keeps its
    # state, the item is a person's again with the ERP's words, and nothing is stuck in the outbox.
    item = by_doc[refused.document_id]
    doc = refused.document
    assert analyst.post(f"/items/{item.pk}/repost/", HTTP_HX_REQUEST="true").status_code == 200
    write = OutboundWrite.objects.get(pk=ExceptionItem.objects.get(pk=item.pk).detail["repost_write_id"])
    payload = {**write.payload, "lines": [{**ln, "account": "8990"} for ln in write.payload["lines"]]}
    OutboundWrite.objects.filter(pk=write.pk).update(payload=payload)
    drain_outbox()
    write.refresh_from_db()
    assert write.status == "rejected"
    item.refresh_from_db()
    doc.refresh_from_db()
    assert item.status == "open" and "refused the re-post" in item.events.last().reason
    assert doc.financial_status == "posted" and doc.events.filter(action="repost_refused").exists()
    refused.refresh_from_db()
    assert refused.superseded_at is None  # the lost posting still counts: the proof keeps showing the gap
