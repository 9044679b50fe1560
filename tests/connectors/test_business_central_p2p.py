"""Business Central procure-to-pay: vendors, purchase orders, budgets, supplier invoices (in-thread sandbox)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
import requests

from connectors.base import Rejected, WriteOp
from connectors.business_central import mapping
from connectors.business_central.connector import BusinessCentralConnector
from connectors.business_central.sandbox.seed import user_id, vendor_terms
from connectors.business_central.sandbox.server import BusinessCentralSandbox
from connectors.sandboxkit.kit import run_in_thread
from connectors.sandboxkit.procurement import P2PWorld, Requisition, build_p2p
from connectors.sandboxkit.world import build_world

TODAY = date(2026, 11, 20)
OPEN_DAY = "2026-11-10"
SEED = 7


@dataclass
class Env:
    sandbox: BusinessCentralSandbox
    url: str
    p2p: P2PWorld

    def connector(self, **overrides) -> BusinessCentralConnector:
        return BusinessCentralConnector(
            {
                "base_url": self.url,
                "client_id": "workbench",
                "client_secret": "sandbox-secret",
                "page_size": 7,
                "timeout": 5,
                **overrides,
            }
        )

    def stats(self) -> dict:
        return requests.get(f"{self.url}/sandbox/stats", timeout=5).json()

    def touch(self, **body) -> dict:
        resp = requests.post(f"{self.url}/sandbox/touch", json=body, timeout=5)
        resp.raise_for_status()
        return resp.json()


@pytest.fixture(scope="module")
def p2p() -> P2PWorld:
    return build_p2p(build_world(seed=SEED, today=TODAY, n_employees=40, n_lines=0), seed=SEED)


@pytest.fixture
def env(p2p):
    sandbox = BusinessCentralSandbox(data_path=None, seed=SEED, today=TODAY, n_employees=40)
    server, url = run_in_thread(sandbox)
    yield Env(sandbox, url, p2p)
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


def read_all(connector, stream, cursor=None) -> tuple[list[dict], list, dict | None]:
    records, errors, last = [], [], cursor
    for page in connector.read(stream, cursor):
        records += page.records
        errors += page.errors
        last = page.next_cursor
    return records, errors, last


def employee_email(p2p: P2PWorld, code: str) -> str:
    return next(e.email for e in p2p.world.employees if e.code == code)


def open_order(p2p: P2PWorld, entity: str = "NW-US") -> Requisition:
    """A received PO of an unblocked supplier: its invoice posts."""
    received = {r.po_number for r in p2p.receipts}
    return next(
        r
        for r in p2p.requisitions
        if r.entity == entity and r.po_number in received and not p2p.supplier(r.lines[0].supplier).blocked
    )


def supplier_invoice(req: Requisition, number: str, **overrides) -> WriteOp:
    payload = {
        "entity": req.entity,
        "vendor_number": req.lines[0].supplier,
        "document_number": number,
        "invoice_date": OPEN_DAY,
        "posting_date": OPEN_DAY,
        "currency": req.currency,
        "order_number": req.po_number,
        "lines": [
            {
                "account": ln.gl_account,
                "description": ln.description,
                "quantity": ln.quantity,
                "unit_cost": ln.unit_price,
                "cost_center": ln.cost_center,
                "tax_code": "TAXABLE",
            }
            for ln in req.lines
        ],
    }
    payload.update(overrides)
    return WriteOp("post_supplier_invoice", payload)


def new_order(number: str, vendor: str, **line) -> WriteOp:
    return WriteOp(
        "create_purchase_order",
        {
            "entity": "NW-US",
            "number": number,
            "vendor_number": vendor,
            "order_date": OPEN_DAY,
            "currency": "USD",
            "lines": [
                {
                    "account": "6110",
                    "description": "Docking station",
                    "quantity": Decimal(3),
                    "unit_cost": Decimal("249.90"),
                    "cost_center": "ENG",
                    "project": "",
                    **line,
                }
            ],
        },
    )


def active_supplier(p2p: P2PWorld, entity: str = "NW-US") -> str:
    return next(s.number for s in p2p.suppliers if s.entity == entity and not s.blocked)


# --- reading ---------------------------------------------------------------------------------------


def test_discover_keeps_legal_entities_first_and_offers_p2p_streams(env):
    specs = env.connector().discover()
    assert specs[0].name == "legal_entities"
    by_name = {s.name: s for s in specs}
    assert {by_name[n].canonical for n in ("suppliers", "purchase_orders", "budgets")} == {
        "supplier",
        "purchase_order",
        "budget",
    }
    assert by_name["budgets"].cursor_field == "lastModifiedDateTime"


def test_suppliers_carry_blocked_and_who_changed_them(env, p2p):
    records, errors, cursor = read_all(env.connector(), "suppliers")
    assert errors == [] and len(records) == len(p2p.suppliers)
    assert set(cursor) == {"NW-US", "NW-DE", "NW-FR"}
    by_code = {r["code"]: r for r in records}
    for sup in p2p.suppliers:
        rec = by_code[sup.number]
        assert (rec["entity"], rec["name"], rec["tax_id"], rec["currency"], rec["blocked"]) == (
            sup.entity,
            sup.name,
            sup.tax_id,
            sup.currency,
            sup.blocked,
        )
        assert rec["changed_by_email"] == employee_email(p2p, sup.created_by)
        # BC names a vendor's payment terms by id; the record carries the code the workbench looks up.
        assert rec["payment_terms_code"] == vendor_terms(sup.number)
    assert {r["blocked"] for r in records} == {"", "Payment", "All"}
    assert len({r["payment_terms_code"] for r in records}) > 1


def test_a_vendor_naming_payment_terms_that_do_not_exist_has_no_terms_code(env, p2p):
    conn = env.connector()
    vendor = read_all(conn, "suppliers")[0][0]
    assert vendor["payment_terms_code"]
    env.touch(stream="suppliers", ids=[vendor["external_id"]], set={"paymentTermsId": "11111111-2222-3333-4444-5555"})
    records, errors, _ = read_all(env.connector(), "suppliers")
    assert errors == [] and next(r for r in records if r["code"] == vendor["code"])["payment_terms_code"] == ""


def test_purchase_orders_come_with_their_lines(env, p2p):
    records, errors, _ = read_all(env.connector(), "purchase_orders")
    ordered = [r for r in p2p.requisitions if r.po_number]
    assert errors == [] and len(records) == len(ordered)
    req = open_order(p2p)
    po = next(r for r in records if r["number"] == req.po_number)
    assert (po["entity"], po["vendor_number"], po["status"], po["currency"], po["total"]) == (
        req.entity,
        req.lines[0].supplier,
        "open",
        req.currency,
        req.total,
    )
    received = {
        rl.po_line_no: rl.quantity for rec in p2p.receipts if rec.po_number == req.po_number for rl in rec.lines
    }
    assert po["fully_received"] == all(received.get(ln.line_no, 0) >= ln.quantity for ln in req.lines)
    assert [
        (
            ln["account"],
            ln["quantity"],
            ln["unit_cost"],
            ln["amount"],
            ln["cost_center"],
            ln["received_quantity"],
            ln["invoiced_quantity"],
        )
        for ln in po["lines"]
    ] == [
        (ln.gl_account, ln.quantity, ln.unit_price, ln.amount, ln.cost_center, received[ln.line_no], 0)
        for ln in req.lines
    ]


def test_budgets_come_from_the_custom_api_page(env, p2p):
    records, errors, cursor = read_all(env.connector(), "budgets")
    assert errors == [] and len(records) == len(p2p.budgets) and set(cursor) == {"NW-US", "NW-DE", "NW-FR"}
    got = {(r["entity"], r["cost_center"], r["gl_account"], r["period"]): r["amount"] for r in records}
    assert got == {(b.entity, b.cost_center, b.gl_account, b.period): b.amount for b in p2p.budgets}


def test_sandbox_serves_receipts_and_users(env, p2p):
    conn = env.connector()
    company = next(c for c in conn._load_companies() if c["name"] == "NW-US")
    body = conn.http.json_of(
        conn.http.request(
            "GET", f"companies({company['id']})/purchaseReceipts", params={"$expand": "purchaseReceiptLines"}
        )
    )
    us_receipts = [r for r in p2p.receipts if p2p.requisition_for_po(r.po_number).entity == "NW-US"]
    assert {r["orderNumber"] for r in body["value"]} == {r.po_number for r in us_receipts}
    assert all(r["purchaseReceiptLines"] for r in body["value"])
    users = conn.http.json_of(
        conn.http.request("GET", f"{conn.api_root}/microsoft/automation/v2.0/companies({company['id']})/users")
    )["value"]
    emp = p2p.world.employees[0]
    assert {"userSecurityId": user_id(SEED, emp.code), "contactEmail": emp.email}.items() <= next(
        u for u in users if u["contactEmail"] == emp.email
    ).items()


def test_incremental_read_returns_just_the_changed_supplier(env, p2p):
    conn = env.connector()
    _, _, cursor = read_all(conn, "suppliers")
    boundary = {r["external_id"] for r in read_all(conn, "suppliers", cursor)[0]}  # the inclusive cursor's rows
    supplier = next(s for s in p2p.suppliers if s.entity == "NW-FR" and not s.blocked)
    changer = next(e for e in p2p.world.employees_of("NW-FR") if e.code != supplier.created_by)
    vendor_id = next(r["external_id"] for r in read_all(conn, "suppliers")[0] if r["code"] == supplier.number)
    env.touch(
        stream="suppliers", ids=[vendor_id], set={"blocked": "Payment", "systemModifiedBy": user_id(SEED, changer.code)}
    )

    changed, errors, new_cursor = read_all(conn, "suppliers", cursor)
    assert errors == [] and {r["external_id"] for r in changed} - boundary == {vendor_id}
    rec = next(r for r in changed if r["external_id"] == vendor_id)
    assert (rec["blocked"], rec["changed_by_email"]) == ("Payment", changer.email)
    assert new_cursor["NW-FR"] > cursor["NW-FR"] and new_cursor["NW-US"] == cursor["NW-US"]


# --- purchase orders -------------------------------------------------------------------------------


def test_create_purchase_order_twice_makes_one_order(env, p2p):
    vendor = active_supplier(p2p)
    first = env.connector().write(new_order("PO-US900001", vendor), idempotency_key="a")
    assert first.status == "open"
    assert first.data == {"number": "PO-US900001", "total": Decimal("749.70"), "entity": "NW-US"}
    second = env.connector().write(new_order("PO-US900001", vendor), idempotency_key="b")
    assert second.external_id == first.external_id and second.message.startswith("Already created")
    stats = env.stats()
    assert stats["orders"]["PO-US900001"] == 1 and stats["purchaseOrders.created"] == 1
    assert "purchaseOrders.rejected" not in stats  # looked up first: no second create was tried

    po = next(r for r in read_all(env.connector(), "purchase_orders")[0] if r["number"] == "PO-US900001")
    assert po["external_id"] == first.external_id and po["vendor_number"] == vendor
    assert [(ln["account"], ln["quantity"], ln["unit_cost"], ln["cost_center"]) for ln in po["lines"]] == [
        ("6110", 3, Decimal("249.90"), "ENG")
    ]


def test_a_second_post_with_the_same_number_is_refused_by_the_sandbox(env, p2p):
    conn = env.connector()
    conn.write(new_order("PO-US900002", active_supplier(p2p)), idempotency_key="a")
    company = next(c for c in conn._load_companies() if c["name"] == "NW-US")
    with pytest.raises(Rejected) as info:
        conn.http.request(
            "POST",
            f"companies({company['id']})/purchaseOrders",
            json_body={"number": "PO-US900002", "vendorNumber": active_supplier(p2p)},
        )
    assert info.value.code == "Internal_EntityWithSameKeyExists" and "already exists" in info.value.message


def test_blocked_vendor_order_is_rejected_naming_the_vendor(env, p2p):
    blocked = next(s.number for s in p2p.suppliers if s.entity == "NW-US" and s.blocked == "All")
    with pytest.raises(Rejected) as info:
        env.connector().write(new_order("PO-US900003", blocked), idempotency_key="c")
    assert info.value.code == "Application_DialogException"
    assert (
        info.value.message == f"You cannot create this type of document when Vendor {blocked} is blocked with type All"
    )
    assert (info.value.field, info.value.value) == ("vendor_number", blocked)
    assert "PO-US900003" not in env.stats()["orders"]


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"vendor_number": "V99999"}, "vendor_number", "V99999"),
        ({"line": {"account": "6999"}}, "account", "6999"),
        ({"line": {"account": "8100"}}, "account", "8100"),  # a heading takes no entries
        ({"line": {"account": "2190"}}, "account", "2190"),  # a control account: no direct posting
        ({"line": {"cost_center": "SALE"}}, "cost_center", "SALE"),
    ],
)
def test_order_refusals_name_the_culprit(env, p2p, change, field, value):
    op = new_order("PO-US900004", change.get("vendor_number", active_supplier(p2p)), **change.get("line", {}))
    with pytest.raises(Rejected) as info:
        env.connector().write(op, idempotency_key="d")
    assert (info.value.field, info.value.value) == (field, value)


# --- supplier invoices -----------------------------------------------------------------------------


def test_post_supplier_invoice_twice_posts_once_and_invoices_the_order(env, p2p):
    req = open_order(p2p)
    conn = env.connector()
    _, _, cursor = read_all(conn, "purchase_orders")
    boundary = {r["external_id"] for r in read_all(conn, "purchase_orders", cursor)[0]}

    first = conn.write(supplier_invoice(req, "INV-90001"), idempotency_key="a")
    assert first.status == "posted"
    assert first.data == {"number": "PPI-108001", "fiscal_year": "2026", "posting_date": OPEN_DAY, "entity": "NW-US"}
    second = env.connector().write(supplier_invoice(req, "INV-90001"), idempotency_key="b")
    assert second.external_id == first.external_id and second.message.startswith("Already posted")
    stats = env.stats()
    assert stats["documents"] == {"INV-90001": 1} and stats["purchaseInvoices.posted"] == 1

    # Only the invoiced order changed since the cursor, and its lines now show what was invoiced.
    changed, _, _ = read_all(conn, "purchase_orders", cursor)
    po = next(r for r in changed if r["number"] == req.po_number)
    assert {r["external_id"] for r in changed} - boundary == {po["external_id"]}
    assert [ln["invoiced_quantity"] for ln in po["lines"]] == [ln.quantity for ln in req.lines]
    doc = next(d for d in read_all(conn, "purchase_invoices")[0] if d["external_id"] == first.external_id)
    assert (doc["vendor_invoice_number"], doc["total"]) == ("INV-90001", req.total)


def test_the_same_invoice_number_from_two_suppliers_is_two_invoices(env, p2p):
    req = open_order(p2p)
    other = next(
        s.number for s in p2p.suppliers if s.entity == "NW-US" and not s.blocked and s.number != req.lines[0].supplier
    )
    conn = env.connector()
    a = conn.write(supplier_invoice(req, "1001"), idempotency_key="a")
    b = conn.write(supplier_invoice(req, "1001", vendor_number=other, order_number=""), idempotency_key="b")
    assert a.external_id != b.external_id and env.stats()["invoices"] == {"Open": 2}


def test_invoice_for_an_unknown_order_is_rejected(env, p2p):
    with pytest.raises(Rejected) as info:
        env.connector().write(
            supplier_invoice(open_order(p2p), "INV-90002", order_number="PO-US999999"), idempotency_key="e"
        )
    assert info.value.code == "Internal_RecordNotFound"
    assert (info.value.field, info.value.value) == ("order_number", "PO-US999999")


def test_vendor_blocked_all_after_the_draft_cannot_post(env, p2p):
    req = open_order(p2p)
    conn = env.connector()
    company = next(c for c in conn._load_companies() if c["name"] == req.entity)
    draft = conn.http.json_of(
        conn.http.request(
            "POST",
            f"companies({company['id']})/purchaseInvoices",
            json_body=mapping.supplier_invoice_body(supplier_invoice(req, "INV-90003").payload),
        )
    )
    assert draft["status"] == "Draft" and draft["orderNumber"] == req.po_number
    vendor_id = next(r["external_id"] for r in read_all(conn, "suppliers")[0] if r["code"] == req.lines[0].supplier)
    env.touch(stream="suppliers", ids=[vendor_id], set={"blocked": "All"})

    with pytest.raises(Rejected) as info:  # the resend finds the draft and tries to post it
        conn.write(supplier_invoice(req, "INV-90003"), idempotency_key="f")
    assert (
        info.value.message
        == f"You cannot post this type of document when Vendor {req.lines[0].supplier} is blocked with type All"
    )
    assert (info.value.field, info.value.value) == ("vendor_number", req.lines[0].supplier)
    assert env.stats()["invoices"] == {"Draft": 1}


def test_vendor_blocked_for_payment_posts_but_is_not_paid(env, p2p):
    received = {r.po_number for r in p2p.receipts}
    req = next(
        r
        for r in p2p.requisitions
        if r.entity == "NW-US" and r.po_number in received and p2p.supplier(r.lines[0].supplier).blocked == "Payment"
    )
    conn = env.connector()
    result = conn.write(supplier_invoice(req, "INV-90004"), idempotency_key="g")
    assert result.status == "posted"
    env.sandbox.pay_after = 0  # everything posted is due for payment at the next look...
    doc = next(d for d in read_all(conn, "purchase_invoices")[0] if d["external_id"] == result.external_id)
    assert doc["status"] == "open" and doc["paid_at"] is None  # ...but a payment block holds it
