"""Procure-to-pay in the ledger: requisition checks (the synchronous API), routing, matching, duplicates."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import master_data
from workbench import jobs
from workbench.models import (
    ApprovalDelegation,
    ApprovalRule,
    Budget,
    CostCenter,
    Document,
    Employee,
    ExceptionItem,
    MatchTolerance,
    PurchaseCategory,
    Supplier,
    SupplierContract,
)
from workbench.services import approvals
from workbench.services.p2p_documents import p2p_documents_upsert
from workbench.services.requisitions import clear_cache
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db
VALIDATE = "/api/p2p/requisitions/validate/"


@pytest.fixture
def p2p(analyst):
    """NW-US with three suppliers (fine, blocked, no contract), two categories, a budget and a hierarchy."""
    clear_cache()
    entity = master_data()
    Supplier.objects.create(entity=entity, code="V100", name="Contoso Hardware", tax_id="DE123456789")
    Supplier.objects.create(entity=entity, code="V200", name="Blocked Corp", blocked="All")
    Supplier.objects.create(entity=entity, code="V300", name="Fabrikam Consulting")
    PurchaseCategory.objects.create(code="IT-HW", name="IT hardware", gl_account="6110")
    PurchaseCategory.objects.create(
        code="PROF-SVC", name="Professional services", gl_account="6130", contract_required=True
    )
    today = timezone.now().date()
    SupplierContract.objects.create(
        number="CTR-1",
        supplier_code="V100",
        category="PROF-SVC",
        start=today - timedelta(days=100),
        end=today + timedelta(days=100),
    )
    period = f"{today:%Y-%m}"
    for acct in ("6110", "6130"):
        Budget.objects.create(
            entity=entity, cost_center="ENG", gl_account=acct, period=period, amount=Decimal("10000"), currency="USD"
        )
    for code, name, manager in [
        ("E0010", "Olivia Owner", "E0011"),
        ("E0011", "Dan Director", "E0012"),
        ("E0012", "Carla CFO", ""),
        ("E0013", "Rita Requester", "E0010"),
    ]:
        Employee.objects.create(entity=entity, code=code, name=name, manager_code=manager)
    CostCenter.objects.filter(entity=entity, code="ENG").update(owner_code="E0010")
    return entity


def req(**over):
    line = {
        "description": "Laptop 14in",
        "category": "IT-HW",
        "quantity": "2",
        "unit_price": "1200.00",
        "gl_account": "6110",
        "cost_center": "ENG",
        "supplier_code": "V100",
        "need_by_date": (timezone.now().date() + timedelta(days=10)).isoformat(),
    }
    line.update(over.pop("line", {}))
    body = {
        "external_id": "REQ-1",
        "number": "2001",
        "entity": "NW-US",
        "requester_code": "E0013",
        "title": "Laptops",
        "currency": "USD",
        "lines": [line],
    }
    body.update(over)
    return body


def test_a_valid_requisition_passes_the_synchronous_check(p2p, analyst_client):
    r = analyst_client.post(VALIDATE, req(), content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json() == {"status": "valid", "messages": [], "findings": []}


@pytest.mark.parametrize(
    "change, code",
    [
        ({"line": {"supplier_code": "V200"}}, "BLOCKED_SUPPLIER"),
        ({"line": {"supplier_code": "V999"}}, "UNKNOWN_SUPPLIER"),
        ({"line": {"supplier_code": "V300", "category": "PROF-SVC", "gl_account": "6130"}}, "NO_CONTRACT"),
        ({"line": {"quantity": "20"}}, "BUDGET_EXCEEDED"),
        ({"line": {"cost_center": "SALE"}}, "UNKNOWN_COST_CENTER"),
        ({"line": {"need_by_date": "2026-09-15"}}, "CLOSED_PERIOD"),
        ({"entity": "NW-XX"}, "UNKNOWN_ENTITY"),
    ],
)
def test_each_problem_is_named_in_the_answer(p2p, analyst_client, change, code):
    r = analyst_client.post(VALIDATE, req(**change), content_type="application/json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "invalid"
    assert code in {f["code"] for f in body["findings"]}, body
    assert all(m for m in body["messages"])


def test_budget_counts_what_others_already_committed(p2p, analyst_client):
    ok = analyst_client.post(VALIDATE, req(line={"quantity": "8"}), content_type="application/json").json()
    assert ok["status"] == "valid"  # 9,600 of 10,000
    # An approved requisition for 2,400 now takes part of the budget.
    p2p_documents_upsert(
        system="coupa",
        kind="requisition",
        records=[
            {
                **req(external_id="REQ-0", number="2000"),
                "status": "approved",
                "total": "2400",
                "lines": [{**req()["lines"][0], "amount": "2400"}],
            }
        ],
    )
    again = analyst_client.post(VALIDATE, req(line={"quantity": "8"}), content_type="application/json").json()
    assert again["status"] == "invalid" and again["findings"][0]["code"] == "BUDGET_EXCEEDED"
    assert "7,600.00" in again["messages"][0]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"entity": "NW-US"},
        req(currency="usd"),
        req(lines=[]),
        req(line={"quantity": "many"}),
        req(title="<script>alert(1)</script>" * 50),
        "not json",
        [1, 2, 3],
    ],
)
def test_bad_input_is_a_clear_400_never_a_500(p2p, analyst_client, body):
    import json

    r = analyst_client.post(VALIDATE, json.dumps(body), content_type="application/json")
    assert r.status_code in (200, 400), r.content
    if r.status_code == 400:
        assert r.json()


def test_the_validation_api_needs_a_login(p2p, client):
    assert client.post(VALIDATE, req(), content_type="application/json").status_code == 401


# --- approval routing --------------------------------------------------------------------------------


def stored(body=None) -> Document:
    rec = {**(body or req()), "status": "pending_approval"}
    rec["lines"] = [{**ln, "amount": str(Decimal(ln["quantity"]) * Decimal(ln["unit_price"]))} for ln in rec["lines"]]
    rec["total"] = str(sum(Decimal(ln["amount"]) for ln in rec["lines"]))
    return p2p_documents_upsert(system="coupa", kind="requisition", records=[rec]).touched[0]


def test_thresholds_pick_the_number_of_levels_up_the_owner_hierarchy(p2p):
    ApprovalRule.objects.create(entity=p2p, min_amount=0, levels=1)
    ApprovalRule.objects.create(entity=p2p, min_amount=2000, levels=2)
    small = stored(req(line={"quantity": "1", "unit_price": "500"}))
    big = stored(req(external_id="REQ-2", number="2002"))
    assert [s.approver for s in approvals.approval_chain(small)[0]] == ["E0010"]
    assert [s.approver for s in approvals.approval_chain(big)[0]] == ["E0010", "E0011"]


def test_a_requester_never_approves_their_own_requisition(p2p):
    ApprovalRule.objects.create(entity=p2p, min_amount=0, levels=2)
    doc = stored(req(requester_code="E0010"))  # the cost center owner asks for something
    steps, _ = approvals.approval_chain(doc)
    assert "E0010" not in [s.approver for s in steps]
    assert [s.approver for s in steps] == ["E0011", "E0012"]


def test_an_absent_approver_is_replaced_by_their_delegate(p2p):
    today = timezone.now().date()
    ApprovalDelegation.objects.create(
        approver="E0010",
        delegate="E0012",
        start=today - timedelta(days=1),
        end=today + timedelta(days=5),
        reason="Vacation",
    )
    steps, _ = approvals.approval_chain(stored())
    assert steps[0].approver == "E0012" and steps[0].delegated_from == "E0010"


def test_decisions_move_the_chain_and_the_last_approval_approves(p2p):
    ApprovalRule.objects.create(entity=p2p, min_amount=0, levels=2)
    doc = stored()
    tasks = approvals.requisition_route(document=doc)
    assert [t.state for t in tasks] == ["requested", "pending"]
    assert approvals.requisition_route(document=doc) == tasks  # routing twice creates nothing new
    out = approvals.approval_decision_apply(task=tasks[0], state="approved", comments="ok", approver="E0010")
    assert out.applied and out.next_task.approver_code == "E0011" and out.next_task.state == "requested"
    out = approvals.approval_decision_apply(task=out.next_task, state="approved", comments="", approver="E0011")
    doc.refresh_from_db()
    assert out.requisition_decided == "approved" and doc.business_status == "approved"


def test_a_decision_by_the_requester_is_a_segregation_of_duties_violation(p2p):
    doc = stored()
    task = approvals.requisition_route(document=doc)[0]
    out = approvals.approval_decision_apply(task=task, state="approved", comments="", approver="E0013")
    assert not out.applied
    assert ExceptionItem.objects.filter(document=doc, code="SOD_VIOLATION", status="open").exists()


# --- three-way match -------------------------------------------------------------------------------------


def po(number="PO-1", lines=((10, "100.00"), (5, "20.00"))):
    rec = {
        "external_id": f"bc-{number}",
        "number": number,
        "entity": "NW-US",
        "vendor_number": "V100",
        "currency": "USD",
        "total": str(sum(q * Decimal(p) for q, p in lines)),
        "order_date": date.today().isoformat(),
        "lines": [
            {
                "line_no": i,
                "description": f"Item {i}",
                "account": "6110",
                "cost_center": "ENG",
                "quantity": str(q),
                "unit_cost": p,
                "amount": str(q * Decimal(p)),
            }
            for i, (q, p) in enumerate(lines, start=1)
        ],
    }
    return p2p_documents_upsert(system="business_central", kind="purchase_order", records=[rec]).touched[0]


def receive(po_number, line_no, qty, rid):
    return p2p_documents_upsert(
        system="coupa",
        kind="goods_receipt",
        records=[
            {
                "external_id": rid,
                "po_number": po_number,
                "po_line_no": line_no,
                "quantity": str(qty),
                "received_on": date.today().isoformat(),
            }
        ],
    )


def invoice(number, lines, po_number="PO-1", supplier="V100", ext=None):
    rec = {
        "external_id": ext or f"inv-{number}",
        "number": number,
        "supplier_code": supplier,
        "entity": "NW-US",
        "currency": "USD",
        "po_number": po_number,
        "invoice_date": date.today().isoformat(),
        "total": str(sum(Decimal(q) * Decimal(p) for _, q, p in lines)),
        "lines": [
            {
                "line_no": i,
                "po_line_no": po_line,
                "description": "x",
                "quantity": str(q),
                "unit_price": p,
                "amount": str(Decimal(q) * Decimal(p)),
            }
            for i, (po_line, q, p) in enumerate(lines, start=1)
        ],
    }
    doc = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[rec]).touched[0]
    clean = documents_validate(documents=[doc])
    return doc, bool(clean)


def codes(doc):
    return sorted(
        ExceptionItem.objects.filter(document=doc, status__in=["open", "in_progress"]).values_list("code", flat=True)
    )


def test_an_invoice_that_matches_po_and_receipt_is_clean(p2p):
    po()
    receive("PO-1", 1, 10, "r1")
    doc, clean = invoice("INV-1", [(1, 10, "100.00")])
    assert clean and codes(doc) == []
    assert doc.lines.get().po_line.line_no == 1


def test_price_above_tolerance_is_a_price_variance_and_within_is_fine(p2p):
    MatchTolerance.objects.create(entity=None, price_pct=Decimal("2"), amount_abs=Decimal("0"))
    po()
    receive("PO-1", 1, 10, "r1")
    ok, clean = invoice("INV-1", [(1, 5, "101.50")])
    assert clean, codes(ok)
    bad, clean = invoice("INV-2", [(1, 5, "110.00")])
    assert not clean and codes(bad) == ["PRICE_VARIANCE"]
    item = ExceptionItem.objects.get(document=bad)
    assert item.amount_at_risk == Decimal("550.00") and "110" in item.message


def test_an_invoice_before_its_goods_waits_then_matches_when_they_arrive(p2p):
    from workbench.services.revalidation import invoices_revalidate_for

    po()
    doc, clean = invoice("INV-9", [(2, 5, "20.00")])
    assert not clean and codes(doc) == ["NOT_RECEIVED"]
    receive("PO-1", 2, 5, "r2")
    invoices_revalidate_for(po_numbers={"PO-1"})
    assert codes(doc) == []
    assert ExceptionItem.objects.get(document=doc).status == "resolved"


def test_invoicing_more_than_was_received_is_a_quantity_variance(p2p):
    po()
    receive("PO-1", 1, 4, "r1")
    doc, clean = invoice("INV-3", [(1, 6, "100.00")])
    assert codes(doc) == ["QUANTITY_VARIANCE"]


def test_the_same_invoice_number_spelled_differently_is_a_duplicate_only_the_second_time(p2p):
    po()
    receive("PO-1", 1, 10, "r1")
    first, _ = invoice("INV-00123", [(1, 2, "100.00")])
    second, clean = invoice("inv 123", [(1, 2, "100.00")], ext="inv-again")
    assert "DUPLICATE_INVOICE" in codes(second) and not clean
    assert "DUPLICATE_INVOICE" not in codes(first)


def test_same_amount_and_day_from_another_supplier_is_flagged_as_possible(p2p):
    po()
    receive("PO-1", 1, 10, "r1")
    invoice("A-1", [(1, 2, "100.00")])
    other, _ = invoice("ZZ-77", [(1, 2, "100.00")], po_number="", supplier="V300")
    item = ExceptionItem.objects.get(document=other, code="DUPLICATE_INVOICE")
    assert item.detail["certainty"] == "possible" and item.message.startswith("Possible duplicate")


def test_a_blocked_supplier_invoice_is_held(p2p):
    Supplier.objects.filter(code="V100").update(blocked="Payment")
    po()
    receive("PO-1", 1, 10, "r1")
    doc, clean = invoice("INV-5", [(1, 1, "100.00")])
    assert not clean and codes(doc) == ["BLOCKED_SUPPLIER"]


# --- screens and analyst actions -----------------------------------------------------------------------


def price_variance_item(p2p):
    po()
    receive("PO-1", 1, 10, "r1")
    doc, _ = invoice("INV-PV", [(1, 5, "110.00")])
    return ExceptionItem.objects.get(document=doc, code="PRICE_VARIANCE")


def test_the_item_page_compares_invoice_po_and_receipt(p2p, analyst_client):
    item = price_variance_item(p2p)
    html = analyst_client.get(f"/items/{item.pk}/").content.decode()
    assert 'data-testid="match-table"' in html and "Accept variance" in html
    assert "$100.00" in html.replace("USD ", "$") or "100.00" in html
    assert "Ask supplier for a credit note" in html and "Reject back to the supplier" in html


def test_accepting_a_variance_needs_a_reason_and_authority(p2p, analyst_client, jobs_sent):
    item = price_variance_item(p2p)  # variance 50.00
    MatchTolerance.objects.create(entity=None, price_pct=Decimal("2"), accept_limit=Decimal("40"))
    r = analyst_client.post(f"/items/{item.pk}/accept-variance/", {"reason": "Freight agreed"}, HTTP_HX_REQUEST="true")
    assert "above your authority" in r.headers.get("HX-Trigger", "")
    MatchTolerance.objects.update(accept_limit=Decimal("100"))
    r = analyst_client.post(f"/items/{item.pk}/accept-variance/", {"reason": ""}, HTTP_HX_REQUEST="true")
    assert "needs a reason" in r.headers.get("HX-Trigger", "")
    analyst_client.post(f"/items/{item.pk}/accept-variance/", {"reason": "Freight agreed"}, HTTP_HX_REQUEST="true")
    item.refresh_from_db()
    revalidated = [kw["document_id"] for name, kw in jobs_sent if name == jobs.REVALIDATE_DOCUMENT]
    assert item.status == "overridden" and revalidated == [item.document_id]
    assert item.events.filter(action="overridden", reason__contains="Freight agreed").exists()


def test_rejecting_an_invoice_closes_its_items_and_never_posts_it(p2p, analyst_client):
    item = price_variance_item(p2p)
    analyst_client.post(f"/items/{item.pk}/reject-invoice/", {"reason": "Wrong price, send a corrected invoice"})
    item.refresh_from_db()
    item.document.refresh_from_db()
    assert item.status == "resolved" and item.document.business_status == "rejected"
    assert documents_validate(documents=[item.document]) == [item.document]  # no rule runs on a rejected invoice
    assert not item.document.writes.exists()


def test_accruals_show_received_not_invoiced_and_invoiced_not_received(p2p, analyst_client):
    po()
    receive("PO-1", 1, 10, "r1")
    invoice("INV-A", [(1, 4, "100.00")])
    Document.objects.filter(number="INV-A").update(match_status="")
    from workbench.services.p2p_documents import invoice_consume

    invoice_consume(document=Document.objects.get(number="INV-A"))
    invoice("INV-B", [(2, 5, "20.00")])  # line 2 never received
    html = analyst_client.get("/p2p/accruals/").content.decode()
    rni = html.split('data-testid="rni"')[1].split("</section>")[0]
    inr = html.split('data-testid="inr"')[1].split("</section>")[0]
    assert "PO-1" in rni and "600.00" in rni  # 6 received, not yet invoiced, at 100
    assert "INV-B" in inr and "100.00" in inr


def test_budgets_page_shows_commitments_and_what_is_left(p2p, analyst_client):
    po(lines=((3, "1000.00"),))
    Document.objects.filter(kind="purchase_order").update(document_date=timezone.now().date())
    html = analyst_client.get("/p2p/budgets/").content.decode()
    assert "ENG" in html and "3,000.00" in html and "7,000.00" in html


def test_an_admin_changes_an_approval_threshold_and_it_is_recorded(p2p, client, admin_user, analyst_client):
    rule = ApprovalRule.objects.create(entity=p2p, min_amount=5000, levels=2)
    assert analyst_client.get("/p2p/settings/").status_code == 403  # analysts cannot edit settings
    client.force_login(admin_user)
    r = client.post(
        f"/p2p/settings/rules/{rule.pk}/",
        {
            "entity": p2p.pk,
            "category": "",
            "min_amount": "2500",
            "levels": "3",
            "extra_approver": "",
            "sla_hours": "24",
            "active": "on",
        },
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and "needs 3 approver(s)" in r.headers["HX-Trigger"]
    rule.refresh_from_db()
    assert rule.min_amount == Decimal("2500") and rule.levels == 3 and rule.updated_by == admin_user
    bad = client.post(
        f"/p2p/settings/rules/{rule.pk}/",
        {"min_amount": "lots", "levels": "9", "sla_hours": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert bad.status_code == 200 and "Check the rule" in bad.headers["HX-Trigger"]


def test_the_upload_screen_takes_several_files(p2p, analyst_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.support.einvoices import CII, UBL

    r = analyst_client.post(
        "/p2p/einvoices/",
        {"files": [SimpleUploadedFile("a.xml", UBL[3].read_bytes()), SimpleUploadedFile("b.xml", CII[1].read_bytes())]},
    )
    html = r.content.decode()
    assert r.status_code == 200 and "Invoice" in html and "Invalid" in html and "not a UBL 2.1" in html


def test_an_overdue_approval_raises_an_item_and_escalates_to_the_manager(p2p):
    from workbench.models import ApprovalTask
    from workbench.services.approvals import approvals_escalate_overdue as escalate_overdue

    doc = stored()
    task = approvals.requisition_route(document=doc)[0]
    ApprovalTask.objects.filter(pk=task.pk).update(
        due_at=timezone.now() - timedelta(hours=1), created_at=timezone.now() - timedelta(hours=49)
    )
    assert escalate_overdue() == 1
    item = ExceptionItem.objects.get(document=doc, code="APPROVAL_OVERDUE")
    assert "escalated to E0011" in item.message
    states = dict(ApprovalTask.objects.filter(document=doc).values_list("approver_code", "state"))
    assert states == {"E0010": "cancelled", "E0011": "requested"}
    assert escalate_overdue() == 0  # once


def test_whoever_changed_a_supplier_never_approves_its_invoice(p2p):
    from workbench.errors import InvalidTransition
    from workbench.services.invoices import invoice_route_to_approver

    Employee.objects.filter(code="E0011").update(email="dan@northwind.example")
    Supplier.objects.filter(code="V100").update(changed_by_email="DAN@northwind.example")
    item = price_variance_item(p2p)
    with pytest.raises(InvalidTransition, match="segregation of duties"):
        invoice_route_to_approver(item=item, actor=None, approver="E0011")


def test_a_credit_note_settles_the_variance_it_was_asked_for(p2p, analyst_client, jobs_sent):
    from workbench.services.invoices import credit_note_apply

    item = price_variance_item(p2p)  # 5 x 10.00 above the PO: 50.00
    analyst_client.post(f"/items/{item.pk}/credit-note/", {"reason": ""})
    item.refresh_from_db()
    assert item.status == "waiting"
    cn = p2p_documents_upsert(
        system="coupa",
        kind="supplier_invoice",
        records=[
            {
                "external_id": "cn-1",
                "number": "CN-1",
                "document_type": "credit_note",
                "supplier_code": "V100",
                "entity": "NW-US",
                "currency": "USD",
                "po_number": "PO-1",
                "invoice_date": date.today().isoformat(),
                "total": "50.00",
                "lines": [
                    {
                        "line_no": 1,
                        "description": "Price correction",
                        "quantity": "1",
                        "unit_price": "50.00",
                        "amount": "50.00",
                    }
                ],
            }
        ],
    ).touched[0]
    assert cn.total == Decimal("-50.00")
    assert credit_note_apply(credit_note=cn) == 1
    item.refresh_from_db()
    revalidated = [kw["document_id"] for name, kw in jobs_sent if name == jobs.REVALIDATE_DOCUMENT]
    assert item.status == "overridden" and revalidated == [item.document_id]
    assert "credit note CN-1" in item.events.last().reason


# --- review fixes: the edges a user or another system can reach ------------------------------------------


def test_budget_check_answers_what_is_left(p2p, analyst_client):
    period = f"{timezone.now():%Y-%m}"
    r = analyst_client.post(
        "/api/p2p/budgets/check/",
        {"entity": "NW-US", "cost_center": "ENG", "gl_account": "6110", "period": period, "amount": "12000"},
        content_type="application/json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["available"] == "10000.0000" and r.json()["sufficient"] is False
    assert (
        analyst_client.post(
            "/api/p2p/budgets/check/",
            {"entity": "NW-US", "cost_center": "ENG", "gl_account": "6110", "period": "2026-13"},
            content_type="application/json",
        ).status_code
        == 400
    )
    assert (
        analyst_client.post(
            "/api/p2p/budgets/check/",
            {"entity": "XX", "cost_center": "ENG", "gl_account": "6110", "period": period},
            content_type="application/json",
        ).status_code
        == 404
    )


def test_a_pushed_decision_applies_once_and_only_for_the_step_whose_turn_it_is(p2p, client_as):
    ApprovalRule.objects.create(entity=p2p, min_amount=0, levels=2)
    doc = stored()
    first, second = approvals.requisition_route(document=doc)
    url = "/api/p2p/approvals/decisions/"
    engine = client_as("servicenow", "Integration: approval engine")  # names the approver it authenticated
    early = engine.post(
        url,
        {"correlation_key": second.correlation_key, "state": "approved", "approver": "E0011"},
        content_type="application/json",
    )
    assert early.status_code == 200 and early.json() == {"applied": False}
    doc.refresh_from_db()
    assert doc.business_status == "pending"
    ok = engine.post(
        url,
        {"correlation_key": first.correlation_key, "state": "approved", "approver": "E0010"},
        content_type="application/json",
    )
    assert ok.json() == {"applied": True}
    assert (
        engine.post(url, {"correlation_key": "nope", "state": "approved"}, content_type="application/json").status_code
        == 404
    )


def test_creating_a_requisition_twice_answers_its_state_and_never_resets_it(p2p, client_as):
    analyst_client = client_as("procurement-api", "Integration: document submission")
    body = req(external_id="API-1")
    first = analyst_client.post("/api/p2p/requisitions/", body, content_type="application/json")
    assert first.status_code == 201 and first.json()["status"] == "routed"
    doc = Document.objects.get(pk=first.json()["document"])
    Document.objects.filter(pk=doc.pk).update(business_status="approved")
    again = analyst_client.post("/api/p2p/requisitions/", body, content_type="application/json")
    assert again.status_code == 200 and again.json()["status"] == "approved"
    assert Document.objects.get(pk=doc.pk).business_status == "approved"
    huge = analyst_client.post(
        "/api/p2p/requisitions/",
        req(external_id="API-2", line={"quantity": "99999999999999", "unit_price": "999999999999"}),
        content_type="application/json",
    )
    assert huge.status_code == 400


def test_an_einvoice_with_absurd_numbers_is_an_exception_not_a_500(p2p, analyst_client):
    from tests.support.einvoices import FIXTURES

    text = (FIXTURES / "bis-billing-3-testfiles" / "Invoice-Min_content_with_VAT.xml").read_text()
    start = text.index("<cbc:InvoicedQuantity")
    end = text.index("</cbc:InvoicedQuantity>", start)
    tag_end = text.index(">", start) + 1
    broken = text[:tag_end] + "1000000000000000000000000000000" + text[end:]
    r = analyst_client.post("/api/p2p/einvoices/", broken.encode(), content_type="application/xml")
    assert r.status_code == 422, r.content
    assert "too large" in r.json()["message"]


def test_a_negative_tolerance_is_refused_with_a_message(p2p, client, admin_user):
    client.force_login(admin_user)
    r = client.post(
        "/p2p/settings/tolerances/",
        {"entity": "", "price_pct": "-5", "qty_abs": "0", "amount_abs": "0", "accept_limit": "10"},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and "Check the tolerance" in r.headers["HX-Trigger"]
    assert not MatchTolerance.objects.exists()


def test_the_erp_refusing_an_invoice_releases_its_quantities(p2p):
    from workbench.services.p2p_documents import invoice_consume, invoice_release

    po()
    receive("PO-1", 1, 10, "r1")
    doc, clean = invoice("INV-R", [(1, 10, "100.00")])
    assert clean and invoice_consume(document=doc) and not invoice_consume(document=doc)  # once
    po_line = Document.objects.get(kind="purchase_order").lines.get(line_no=1)
    assert po_line.invoiced_quantity == 10
    assert invoice_release(document=doc) and not invoice_release(document=doc)
    po_line.refresh_from_db()
    assert po_line.invoiced_quantity == 0
    assert documents_validate(documents=[doc]) == [doc]  # its own quantities no longer count against it


def test_sending_a_requisition_back_tells_the_procurement_suite_not_the_expense_platform(p2p, analyst_client):
    from workbench.models import Connection, OutboundWrite

    Connection.objects.create(name="Coupa", kind="coupa", role="procurement", config={"base_url": "http://127.0.0.1:9"})
    doc = stored(req(line={"supplier_code": "V200"}))
    documents_validate(documents=[doc])
    item = ExceptionItem.objects.get(document=doc, code="BLOCKED_SUPPLIER")
    analyst_client.post(f"/items/{item.pk}/send-back/", {"reason": "Pick another supplier: V200 is blocked"})
    write = OutboundWrite.objects.get(document=doc)
    assert write.action == "requisition_validation"
    assert write.payload == {
        "requisition_id": "REQ-1",
        "status": "invalid",
        "messages": ["Pick another supplier: V200 is blocked"],
    }


def test_routing_to_someone_who_is_not_an_employee_is_refused_at_once(p2p, analyst_client):
    item = price_variance_item(p2p)
    r = analyst_client.post(f"/items/{item.pk}/route/", {"approver": "nobody_xyz"}, HTTP_HX_REQUEST="true")
    assert "not an active employee code" in r.headers["HX-Trigger"]
    item.refresh_from_db()
    assert item.status == "open"


def test_delegations_name_real_people(p2p, client, admin_user):
    client.force_login(admin_user)
    today = timezone.now().date().isoformat()
    bad = client.post(
        "/p2p/settings/delegations/",
        {"approver": "E0010", "delegate": "ZZ999", "start": today, "end": today},
        HTTP_HX_REQUEST="true",
    )
    assert "not an employee code" in bad.headers["HX-Trigger"]
    same = client.post(
        "/p2p/settings/delegations/",
        {"approver": "E0010", "delegate": "e0010", "start": today, "end": today},
        HTTP_HX_REQUEST="true",
    )
    assert "cannot delegate to themselves" in same.headers["HX-Trigger"]
    assert not ApprovalDelegation.objects.exists()
