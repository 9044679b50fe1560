"""The Coupa connector against its REST sandbox (in-thread HTTP servers, no Django)."""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from connectors.base import ConfigError, Page, Rejected, TransientError, WriteOp
from connectors.coupa.connector import CoupaConnector
from connectors.coupa.sandbox.server import CoupaSandbox
from connectors.sandboxkit.kit import run_in_thread
from connectors.sandboxkit.procurement import build_p2p
from connectors.sandboxkit.world import build_world

WORLD_ARGS = {"seed": 3, "today": date(2026, 11, 20), "n_employees": 20}
P2P = build_p2p(build_world(**WORLD_ARGS, n_lines=0), seed=3)
PENDING = [r for r in P2P.requisitions if r.status == "pending_approval"]
API_KEY = {"X-COUPA-API-KEY": "sandbox-secret"}
HOSTILE = '<script>alert(1)</script> & "quotes" — Ünïcode'


def stop(server) -> None:
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


@pytest.fixture
def env():
    sandbox = CoupaSandbox(data_path=None, n_lines=0, **WORLD_ARGS)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    stop(server)


@pytest.fixture
def url(env) -> str:
    return env[1]


def connector(url: str, **extra) -> CoupaConnector:
    return CoupaConnector(
        {"base_url": url, "client_id": "workbench", "client_secret": "sandbox-secret", "timeout": 5, **extra}
    )


def read_all(conn: CoupaConnector, stream: str, cursor: dict | None = None) -> tuple[list[dict], list, list[Page]]:
    pages = list(conn.read(stream, cursor))
    return [r for p in pages for r in p.records], [e for p in pages for e in p.errors], pages


def api(url: str, method: str, path: str, body: dict | None = None) -> requests.Response:
    return requests.request(method, f"{url}{path}", json=body, headers=API_KEY, timeout=10)


def write(conn: CoupaConnector, action: str, **payload):
    return conn.write(WriteOp(action, payload), idempotency_key=f"{action}:{json.dumps(payload, default=str)}")


def stats(url: str) -> dict:
    return requests.get(f"{url}/sandbox/stats", timeout=5).json()


# --- check, auth, discover ------------------------------------------------------------------------


def test_check_with_oauth_and_with_the_api_key_header(url):
    assert connector(url).check().ok
    assert CoupaConnector({"base_url": url, "api_key": "sandbox-secret"}).check().ok
    bad = CoupaConnector({"base_url": url, "api_key": "wrong"})
    assert not bad.check().ok
    with pytest.raises(ConfigError):
        list(bad.read("suppliers", None))
    records, _, _ = read_all(CoupaConnector({"base_url": url, "api_key": "sandbox-secret"}), "suppliers")
    assert len(records) == len(P2P.suppliers)


def test_discover_names_cursor_streams_and_queues():
    specs = {s.name: s for s in connector("http://unused").discover()}
    assert list(specs) == [
        "suppliers",
        "commodities",
        "contracts",
        "requisitions",
        "purchase_orders",
        "receipts",
        "invoices",
    ]
    assert specs["invoices"].canonical == "supplier_invoice" and specs["invoices"].cursor_field is None
    assert specs["receipts"].canonical == "goods_receipt" and specs["receipts"].cursor_field is None
    assert specs["requisitions"].cursor_field == "updated_at"


# --- cursor streams -----------------------------------------------------------------------------


def test_full_then_incremental_read_returns_only_changed_rows(env):
    sandbox, url = env
    conn = connector(url)
    records, errors, pages = read_all(conn, "requisitions")
    assert not errors and len(records) == len(P2P.requisitions) == 60
    cursor = pages[-1].next_cursor
    assert read_all(conn, "requisitions", cursor)[0] == []  # nothing changed: nothing again

    pending = str(PENDING[0].coupa_id)
    write(conn, "requisition_decision", requisition_id=pending, decision="approved", comment="", approver="E1")
    sandbox.update("requisitions", PENDING[1].coupa_id, {"requisition-description": "Changed in Coupa"})
    changed, _, pages = read_all(conn, "requisitions", cursor)
    assert [(r["external_id"], r["status"]) for r in changed] == [
        (pending, "approved"),
        (str(PENDING[1].coupa_id), "pending_approval"),
    ]
    assert changed[1]["title"] == "Changed in Coupa"
    assert read_all(conn, "requisitions", pages[-1].next_cursor)[0] == []


def test_requisitions_follow_the_canonical_shape(url):
    records, _, _ = read_all(connector(url), "requisitions")
    req = next(r for r in P2P.requisitions if r.status == "ordered" and len(r.lines) > 1)
    rec = next(r for r in records if r["external_id"] == str(req.coupa_id))
    requester = next(e for e in P2P.world.employees if e.code == req.requester)
    assert (rec["number"], rec["entity"], rec["currency"], rec["status"]) == (
        str(req.coupa_id),
        req.entity,
        req.currency,
        "ordered",
    )
    assert (rec["requester_code"], rec["requester_name"], rec["requester_email"]) == (
        requester.code,
        requester.name,
        requester.email,
    )
    assert rec["total"] == req.total and isinstance(rec["total"], Decimal)
    assert rec["erp_po_number"] == req.po_number and rec["title"] == req.title
    assert rec["updated_at"].endswith("Z") and rec["submitted_at"][:10] == req.submitted.isoformat()
    for line, src in zip(rec["lines"], req.lines, strict=True):
        assert (line["line_no"], line["category"], line["quantity"], line["unit_price"], line["amount"]) == (
            src.line_no,
            src.category,
            src.quantity,
            src.unit_price,
            src.amount,
        )
        assert (line["gl_account"], line["cost_center"], line["supplier_code"], line["uom"]) == (
            src.gl_account,
            src.cost_center,
            src.supplier,
            src.uom,
        )
        assert line["need_by_date"] == src.need_by.isoformat() and line["currency"] == req.currency


def test_paging_over_more_than_50_rows(url):
    raw = api(url, "GET", "/api/requisitions?limit=100").json()
    assert len(raw) == 50  # Coupa's maximum page
    assert len(api(url, "GET", "/api/requisitions?offset=50&limit=50").json()) == 10

    records, _, pages = read_all(connector(url), "requisitions")
    assert [len(p.records) for p in pages] == [50, 10]
    records7, _, pages7 = read_all(connector(url, page_size=7), "requisitions")
    # Each page restarts at the newest bound (keyset paging), re-fetching the row at that second.
    assert len(pages7) == 10 and [r["external_id"] for r in records7] == [r["external_id"] for r in records]


def test_rows_sharing_one_second_are_neither_lost_nor_repeated(env):
    sandbox, url = env
    same = "2026-11-01T12:00:00+00:00"
    for doc in sandbox.store.all("suppliers")[:12]:  # as an import in Coupa would stamp them
        sandbox.store.put("suppliers", str(doc["id"]), {**doc, "updated-at": same})
    conn = connector(url, page_size=5)
    records, _, pages = read_all(conn, "suppliers")
    ids = [r["external_id"] for r in records]
    assert len(ids) == len(set(ids)) == len(P2P.suppliers)
    assert read_all(conn, "suppliers", pages[-1].next_cursor)[0] == []
    # The tied rows are newest; a cursor that stops inside the tie (5 of 12 read) resumes with the other 7.
    inside = next(p.next_cursor for p in pages if len(p.next_cursor["ids"]) == 5)
    assert [r["external_id"] for r in read_all(conn, "suppliers", inside)[0]] == ids[-7:]


def test_every_cursor_stream_maps(url):
    conn = connector(url)
    counts = {s: len(read_all(conn, s)[0]) for s in ("suppliers", "commodities", "contracts", "purchase_orders")}
    assert counts == {
        "suppliers": 21,
        "commodities": 7,
        "contracts": sum(len(s.contracts) for s in P2P.suppliers),
        "purchase_orders": 40,
    }
    commodities = {c["code"]: c for c in read_all(conn, "commodities")[0]}
    assert commodities["IT-SW"]["contract_required"] is True and commodities["IT-HW"]["gl_account"] == "6110"


# --- queues -------------------------------------------------------------------------------------


def test_exported_queue_empties_once_marked(url):
    conn = connector(url)
    invoices, errors, _ = read_all(conn, "invoices")
    assert not errors and len(invoices) == len(P2P.invoices)
    inv = next(i for i in invoices if i["po_number"])
    assert inv["channel"] == "coupa" and inv["total"] == inv["net_total"] + inv["tax_total"]
    assert inv["lines"][0]["po_line_no"] == 1 and inv["lines"][0]["tax_percent"] is not None
    assert read_all(conn, "invoices")[0] == invoices  # not marked: the same ones again

    ids = [i["external_id"] for i in invoices]
    first = write(conn, "mark_exported", object="invoices", ids=ids)
    assert (first.status, first.data["exported"]) == ("exported", ids)
    assert read_all(conn, "invoices")[:2] == ([], [])
    assert write(conn, "mark_exported", object="invoices", ids=ids) == first  # again: same result

    # Receipts: more than a page; marking each page as it arrives still reaches every row once.
    seen = []
    for page in connector(url, page_size=20).read("receipts", None):
        page_ids = [r["external_id"] for r in page.records]
        seen += page_ids
        if page_ids:
            write(conn, "mark_exported", object="receipts", ids=page_ids)
    assert len(seen) == len(set(seen)) == sum(len(r.lines) for r in P2P.receipts)
    assert stats(url)["not_exported"]["receiving_transactions"] == 0


def test_receipts_and_invoices_typed_into_coupa_join_the_queues(url):
    conn = connector(url)
    po = P2P.requisitions[1]  # ordered (every third one waits for approval)
    resp = api(
        url,
        "POST",
        "/api/receiving_transactions",
        {
            "quantity": "2",
            "order-line": {"po-number": po.po_number, "line-num": 1},
            "transaction-date": "2026-11-21T09:00:00+00:00",
        },
    )
    assert resp.status_code == 201, resp.text
    (receipt,) = [r for r in read_all(conn, "receipts")[0] if r["external_id"] == str(resp.json()["id"])]
    assert receipt == {
        **receipt,
        "po_number": po.po_number,
        "po_line_no": 1,
        "quantity": Decimal(2),
        "received_on": "2026-11-21",
        "entity": po.entity,
    }

    body = {
        "invoice-number": "X-1",
        "invoice-date": "2026-11-21",
        "supplier": {"number": po.lines[0].supplier},
        "currency": {"code": po.currency},
        "invoice-lines": [
            {
                "description": HOSTILE,
                "quantity": 1,
                "price": "10.00",
                "tax-code": {"code": "VAT19"},
                "po-number": po.po_number,
                "order-line-num": 1,
            }
        ],
    }
    resp = api(url, "POST", "/api/invoices", body)
    assert resp.status_code == 201, resp.text
    again = api(url, "POST", "/api/invoices", body)
    assert again.status_code == 422 and "already been used" in again.json()["errors"]["invoice"][0]
    (inv,) = [i for i in read_all(conn, "invoices")[0] if i["external_id"] == str(resp.json()["id"])]
    assert (inv["number"], inv["net_total"], inv["tax_total"], inv["total"]) == (
        "X-1",
        Decimal("10.00"),
        Decimal("1.90"),
        Decimal("11.90"),
    )
    assert inv["lines"][0]["description"] == HOSTILE and inv["entity"] == po.entity

    api(
        url,
        "POST",
        "/api/requisitions",
        {
            "requested-by": {"employee-number": po.requester},
            "currency": {"code": po.currency},
            "requisition-description": HOSTILE,
            "requisition-lines": [{"description": "x", "quantity": 1, "unit-price": 5, "commodity": {"code": "LAB"}}],
        },
    )
    page = requests.get(f"{url}/", timeout=5).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page


def test_an_unmappable_record_is_a_record_error(env):
    sandbox, url = env
    conn = connector(url)
    bad = P2P.invoices[0].coupa_id
    sandbox.update("invoices", bad, {"gross-total": "12,50 EUR"})
    records, errors, _ = read_all(conn, "invoices")
    assert len(records) == len(P2P.invoices) - 1
    (err,) = errors
    assert err.external_id == str(bad) and "gross-total is not a number: '12,50 EUR'" in err.message
    assert err.raw and err.summary["number"] == P2P.invoices[0].number

    # In a cursor stream the bad row is quarantined and the cursor still moves past it.
    _, _, pages = read_all(conn, "requisitions")
    sandbox.update("requisitions", PENDING[0].coupa_id, {"total": None})
    records, errors, pages = read_all(conn, "requisitions", pages[-1].next_cursor)
    assert records == [] and [e.external_id for e in errors] == [str(PENDING[0].coupa_id)]
    assert read_all(conn, "requisitions", pages[-1].next_cursor)[:2] == ([], [])


# --- faults -------------------------------------------------------------------------------------


def test_throttling_is_transient_with_retry_after(url):
    conn = connector(url)
    conn.check()
    requests.post(f"{url}/sandbox/faults", json={"throttle_rate": 1, "retry_after": 3}, timeout=5)
    with pytest.raises(TransientError) as exc:
        list(conn.read("invoices", None))
    assert exc.value.retry_after == 3.0
    with pytest.raises(TransientError) as exc:  # the same with the API key (no token request)
        list(CoupaConnector({"base_url": url, "api_key": "sandbox-secret"}).read("suppliers", None))
    assert exc.value.retry_after == 3.0


# --- writes -------------------------------------------------------------------------------------


def test_requisition_ordered_twice_creates_one_purchase_order(url):
    conn = connector(url)
    _, _, pages = read_all(conn, "purchase_orders")
    req = PENDING[0]
    write(conn, "requisition_decision", requisition_id=req.coupa_id, decision="approved", comment="ok", approver="E1")
    payload = {"requisition_id": req.coupa_id, "po_number": "PO-NEW-1", "commitment": "CMT-9", "currency": req.currency}
    first = write(conn, "requisition_ordered", **payload)
    second = write(conn, "requisition_ordered", **payload)
    assert first == second and first.status == "ordered" and first.data["po_number"] == "PO-NEW-1"
    assert stats(url)["purchase_orders_by_number"]["PO-NEW-1"] == 1

    (po,) = read_all(conn, "purchase_orders", pages[-1].next_cursor)[0]
    assert (po["external_id"], po["number"], po["requisition_external_id"]) == (
        first.external_id,
        "PO-NEW-1",
        str(req.coupa_id),
    )
    assert po["total"] == req.total and [ln["line_no"] for ln in po["lines"]] == [ln.line_no for ln in req.lines]
    doc = api(url, "GET", f"/api/requisitions/{req.coupa_id}").json()
    assert (doc["status"], doc["erp-po-number"], doc["erp-commitment"]) == ("ordered", "PO-NEW-1", "CMT-9")
    # A resent approval after the order is still the same answer, not an error.
    assert (
        write(
            conn, "requisition_decision", requisition_id=req.coupa_id, decision="approved", comment="ok", approver="E1"
        ).status
        == "approved"
    )
    with pytest.raises(Rejected) as exc:
        write(conn, "requisition_ordered", **{**payload, "po_number": "PO-OTHER"})
    assert "already ordered on PO-NEW-1" in exc.value.message


def test_validation_decision_and_invoice_status_are_idempotent(url):
    conn = connector(url)
    a, b = PENDING[0].coupa_id, PENDING[1].coupa_id
    op = {"requisition_id": a, "status": "invalid", "messages": ["Supplier V1 is blocked"]}
    assert write(conn, "requisition_validation", **op) == write(conn, "requisition_validation", **op)
    doc = api(url, "GET", f"/api/requisitions/{a}").json()
    assert (doc["status"], doc["validation-status"], doc["validation-messages"]) == (
        "draft",
        "invalid",
        "Supplier V1 is blocked",
    )

    rejected = {"requisition_id": b, "decision": "rejected", "comment": "over budget", "approver": "E7"}
    assert write(conn, "requisition_decision", **rejected) == write(conn, "requisition_decision", **rejected)
    assert api(url, "GET", f"/api/requisitions/{b}").json()["reject-reason-comment"] == "over budget"
    with pytest.raises(Rejected):  # a rejected one cannot be approved any more
        write(conn, "requisition_decision", **{**rejected, "decision": "approved"})

    inv = P2P.invoices[0].coupa_id
    status = {
        "invoice_id": inv,
        "status": "approved",
        "erp_document_number": "108001",
        "payment_status": "ready_for_payment",
        "comment": "",
    }
    assert write(conn, "invoice_status", **status) == write(conn, "invoice_status", **status)
    doc = api(url, "GET", f"/api/invoices/{inv}").json()
    assert (doc["status"], doc["erp-document-number"], doc["erp-status"], doc["payment-status"]) == (
        "approved",
        "108001",
        "posted",
        "ready_for_payment",
    )


def test_write_refusals(url):
    conn = connector(url)
    with pytest.raises(Rejected) as exc:
        write(conn, "mark_exported", object="invoices", ids=["999999"])
    assert exc.value.code == "HTTP_404" and "Could not find invoice" in exc.value.message
    with pytest.raises(Rejected):
        write(conn, "invoice_status", invoice_id=999999, status="approved")
    with pytest.raises(ValueError):
        write(conn, "delete_everything")
    with pytest.raises(ValueError):
        write(conn, "mark_exported", object="suppliers", ids=["1"])


# --- Call Outs ----------------------------------------------------------------------------------


@pytest.fixture
def validator():
    """A tiny validation service: answers what ``answer`` holds and keeps what it received."""
    state: dict = {"answer": {"status": "valid", "messages": []}, "received": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state["received"].append((self.headers["Authorization"], json.loads(body)))
            data = json.dumps(state["answer"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/validate"
    yield state
    stop(server)


def new_requisition(url: str, *, submit: bool) -> dict:
    req = PENDING[0]
    resp = api(
        url,
        "POST",
        "/api/requisitions",
        {
            "requested-by": {"employee-number": req.requester},
            "currency": {"code": req.currency},
            "requisition-description": "Two monitors",
            "submit-for-approval": submit,
            "requisition-lines": [
                {
                    "description": "27in monitor",
                    "quantity": 2,
                    "unit-price": "310.50",
                    "commodity": {"code": "IT-HW"},
                    "supplier": {"number": req.lines[0].supplier},
                    "need-by-date": "2026-12-01",
                }
            ],
        },
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_callout_invalid_sends_the_requisition_back_to_draft(url, validator):
    requests.post(f"{url}/sandbox/callout", json={"url": validator["url"], "token": "tok-1"}, timeout=5)
    validator["answer"] = {"status": "invalid", "messages": ["Supplier is blocked", "No contract"]}
    doc = new_requisition(url, submit=True)

    assert (doc["status"], doc["validation-status"]) == ("draft", "invalid")
    assert doc["validation-messages"] == "Supplier is blocked\nNo contract"
    ((auth, sent),) = validator["received"]
    assert auth == "Token tok-1"
    assert sent["external_id"] == str(doc["id"]) and sent["status"] == "pending_approval"
    assert sent["total"] == "621.00" and sent["lines"][0]["gl_account"] == "6110"  # canonical, exact money

    validator["answer"] = {"status": "valid", "messages": []}  # fixed and submitted again
    doc = api(url, "PUT", f"/api/requisitions/{doc['id']}/submit_for_approval").json()
    assert (doc["status"], doc["validation-status"]) == ("pending_approval", "valid")
    (rec,) = [r for r in read_all(connector(url), "requisitions")[0] if r["external_id"] == str(doc["id"])]
    assert rec["validation_status"] == "valid" and rec["lines"][0]["amount"] == Decimal("621.00")


def test_callout_valid_and_unreachable_keep_it_pending(url, validator):
    requests.post(f"{url}/sandbox/callout", json={"url": validator["url"], "token": "t"}, timeout=5)
    doc = new_requisition(url, submit=False)
    assert doc["status"] == "draft" and not validator["received"]
    doc = api(url, "PUT", f"/api/requisitions/{doc['id']}/submit_for_approval").json()
    assert (doc["status"], doc["validation-status"]) == ("pending_approval", "valid")
    again = api(url, "PUT", f"/api/requisitions/{doc['id']}/submit_for_approval")
    assert again.status_code == 422 and "only a draft" in again.json()["errors"]["requisition"][0]

    requests.post(f"{url}/sandbox/callout", json={"url": "http://127.0.0.1:9/x", "token": "t"}, timeout=5)
    doc = new_requisition(url, submit=True)
    assert (doc["status"], doc["validation-status"]) == ("pending_approval", "unavailable")


def test_a_supplier_edited_through_the_api_is_read_again_with_its_new_tax_id(url):
    conn = connector(url)
    suppliers, _, pages = read_all(conn, "suppliers")
    first = suppliers[0]
    r = api(url, "PUT", f"/api/suppliers/{first['external_id']}", {"tax-id": "DE 134 976 973"})
    assert r.status_code == 200 and r.json()["tax-id"] == "DE 134 976 973"
    changed = read_all(conn, "suppliers", pages[-1].next_cursor)[0]
    assert [(s["external_id"], s["tax_id"]) for s in changed] == [(first["external_id"], "DE 134 976 973")]
    # what Coupa refuses: read-only attributes, a bad status, a number where text belongs
    for body in ({"number": "X1"}, {"status": "deleted"}, {"tax-id": 12}):
        r = api(url, "PUT", f"/api/suppliers/{first['external_id']}", body)
        assert r.status_code == 422 and "errors" in r.json(), body
    assert api(url, "PUT", "/api/suppliers/999999", {"name": "x"}).status_code == 404
