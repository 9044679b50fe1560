"""Business Central purchase credit memos: the sandbox's v2.0 set and the connector's ``post_credit_note``
(in-thread sandbox, real HTTP)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import requests

from connectors.base import Rejected, TransientError, WriteOp
from connectors.business_central import mapping
from connectors.business_central.sandbox.server import BusinessCentralSandbox
from connectors.sandboxkit.kit import run_in_thread
from connectors.sandboxkit.procurement import P2PWorld, build_p2p
from connectors.sandboxkit.world import build_world
from tests.connectors.test_business_central_p2p import (
    OPEN_DAY,
    SEED,
    TODAY,
    Env,
    open_order,
    read_all,
    supplier_invoice,
)


@pytest.fixture(scope="module")
def p2p() -> P2PWorld:
    return build_p2p(build_world(seed=SEED, today=TODAY, n_employees=40, n_lines=0), seed=SEED)


@pytest.fixture
def env(p2p):
    sandbox = BusinessCentralSandbox(data_path=None, seed=SEED, today=TODAY, n_employees=40)
    server, url = run_in_thread(sandbox)
    yield Env(sandbox, url, p2p)
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


def credit_note(vendor: str, number: str, invoice_number: str = "", **overrides) -> WriteOp:
    payload = {
        "entity": "NW-US",
        "vendor_number": vendor,
        "document_number": number,
        "posting_date": OPEN_DAY,
        "credit_memo_date": OPEN_DAY,
        "currency": "USD",
        "invoice_number": invoice_number,
        "lines": [
            {
                "account": "6110",
                "description": "Price correction",
                "quantity": Decimal(1),
                "unit_cost": Decimal("40.00"),
                "cost_center": "ENG",
            }
        ],
    }
    payload.update(overrides)
    return WriteOp("post_credit_note", payload)


def posted_invoice(env: Env, p2p, number: str = "INV-91001"):
    req = open_order(p2p)
    result = env.connector().write(supplier_invoice(req, number), idempotency_key=f"inv-{number}")
    return req, result


def vendor_balance(env: Env, vendor: str) -> Decimal:
    conn = env.connector()
    company = next(c for c in conn._load_companies() if c["name"] == "NW-US")
    rows = conn.http.json_of(
        conn.http.request("GET", f"companies({company['id']})/vendors", params={"$filter": f"number eq '{vendor}'"})
    )["value"]
    return Decimal(str(rows[0]["balance"]))


def test_a_credit_note_sent_twice_is_one_posted_credit_memo_applied_to_its_invoice(env, p2p):
    req, invoice = posted_invoice(env, p2p)
    vendor = req.lines[0].supplier
    assert vendor_balance(env, vendor) == req.total

    first = env.connector().write(credit_note(vendor, "CN-501", invoice.data["number"]), idempotency_key="cn")
    second = env.connector().write(credit_note(vendor, "CN-501", invoice.data["number"]), idempotency_key="cn")

    assert first.status == "posted" and first.data["invoice_number"] == invoice.data["number"]
    assert first.data["number"].startswith("PPCM-") and first.data["posting_date"] == OPEN_DAY
    assert second.external_id == first.external_id and second.message.startswith("Already posted")
    assert env.stats()["purchaseCreditMemos.posted"] == 1
    assert vendor_balance(env, vendor) == req.total - Decimal("40.00")
    memos, errors, _ = read_all(env.connector(), "purchase_credit_memos")
    assert errors == []
    assert [
        (m["vendor_credit_memo_number"], m["status"], m["total"], m["invoice_id"], m["invoice_number"]) for m in memos
    ] == [("CN-501", "open", Decimal("40.00"), invoice.external_id, invoice.data["number"])]


def test_a_lost_answer_is_resent_and_finds_the_first_credit_memo(env, p2p):
    req, invoice = posted_invoice(env, p2p)
    vendor = req.lines[0].supplier
    requests.post(
        f"{env.url}/sandbox/faults",
        json={"timeout_rate": 1, "timeout_methods": ["POST"], "hang_seconds": 3},
        timeout=5,
    )
    with pytest.raises(TransientError) as info:
        env.connector(timeout=1).write(credit_note(vendor, "CN-502", invoice.data["number"]), idempotency_key="k")
    assert info.value.uncertain  # the ERP may have booked it: retried with the same number, never a new one
    requests.post(f"{env.url}/sandbox/faults", json={"timeout_rate": 0}, timeout=5)

    again = env.connector().write(credit_note(vendor, "CN-502", invoice.data["number"]), idempotency_key="k")
    assert again.status == "posted"
    memos = read_all(env.connector(), "purchase_credit_memos")[0]
    assert [m["vendor_credit_memo_number"] for m in memos] == ["CN-502"]


def test_the_sandbox_refuses_a_credit_memo_for_another_vendors_invoice(env, p2p):
    req, invoice = posted_invoice(env, p2p)
    other = next(
        s.number for s in p2p.suppliers if s.entity == "NW-US" and not s.blocked and s.number != req.lines[0].supplier
    )
    with pytest.raises(Rejected) as info:
        env.connector().write(credit_note(other, "CN-503", invoice.data["number"]), idempotency_key="x")
    assert f"is for vendor {req.lines[0].supplier}, not {other}" in info.value.message
    assert (info.value.field, info.value.value) == ("invoice_number", invoice.data["number"])
    assert read_all(env.connector(), "purchase_credit_memos")[0] == []


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"invoice_number": "PPI-999999"}, "Purch. Inv. Header does not exist"),
        ({"posting_date": "2019-01-31"}, "not within your range of allowed posting dates"),
        ({"lines": [{"account": "6110", "quantity": 1, "unit_cost": 5}]}, "Select a Dimension Value Code"),
        ({"lines": [{"account": "6110", "quantity": -1, "unit_cost": 5, "cost_center": "ENG"}]}, "must be positive"),
        ({"vendor_number": "V-NOPE"}, "cannot be found in the related table (Vendor)"),
    ],
)
def test_what_the_erp_refuses_is_refused_in_its_words(env, p2p, overrides, words):
    req, invoice = posted_invoice(env, p2p)
    op = credit_note(req.lines[0].supplier, "CN-504", **{"invoice_number": invoice.data["number"], **overrides})
    with pytest.raises(Rejected) as info:
        env.connector().write(op, idempotency_key="r")
    assert words in info.value.message
    assert env.stats().get("purchaseCreditMemos.posted", 0) == 0


def test_the_credit_memo_is_paid_with_its_invoice_and_the_balance_returns_to_zero(env, p2p):
    req, invoice = posted_invoice(env, p2p)
    vendor = req.lines[0].supplier
    env.connector().write(credit_note(vendor, "CN-505", invoice.data["number"]), idempotency_key="p")
    env.sandbox.pay_after = 0
    assert vendor_balance(env, vendor) == 0
    assert [m["status"] for m in read_all(env.connector(), "purchase_credit_memos")[0]] == ["paid"]


def test_a_standard_odata_client_reads_credit_memos_their_lines_and_filters_them(env, p2p):
    req, invoice = posted_invoice(env, p2p)
    result = env.connector().write(
        credit_note(req.lines[0].supplier, "CN-506", invoice.data["number"]), idempotency_key="o"
    )
    conn = env.connector()
    company = next(c for c in conn._load_companies() if c["name"] == "NW-US")
    memos = f"companies({company['id']})/purchaseCreditMemos"

    def get(path, **params):
        return conn.http.json_of(conn.http.request("GET", path, params=params or None))

    found = get(memos, **{"$filter": f"invoiceNumber eq '{invoice.data['number']}' and status eq 'Open'"})["value"]
    assert [m["id"] for m in found] == [result.external_id]
    assert found[0]["vendorCreditMemoNumber"] == "CN-506" and "vendorInvoiceNumber" not in found[0]
    assert get(memos, **{"$filter": "invoiceNumber eq 'PPI-0'"})["value"] == []
    lines = get(f"{memos}({result.external_id})/purchaseCreditMemoLines")["value"]
    assert [(ln["lineObjectNumber"], ln["amountIncludingTax"]) for ln in lines] == [("6110", 40.0)]
    expanded = get(f"{memos}({result.external_id})", **{"$expand": "purchaseCreditMemoLines"})
    assert expanded["purchaseCreditMemoLines"][0]["id"] == lines[0]["id"]
    with pytest.raises(Rejected):  # a property credit memos do not have
        get(memos, **{"$filter": "vendorInvoiceNumber eq 'CN-506'"})


def test_the_sandbox_refuses_a_second_credit_memo_number_and_a_blocked_account(env, p2p):
    req, invoice = posted_invoice(env, p2p)
    vendor = req.lines[0].supplier
    conn = env.connector()
    company = next(c for c in conn._load_companies() if c["name"] == "NW-US")
    memos = f"companies({company['id']})/purchaseCreditMemos"
    body = mapping.credit_memo_body(credit_note(vendor, "CN-507", invoice.data["number"]).payload)
    draft = conn.http.json_of(conn.http.request("POST", memos, json_body=body))
    assert (draft["status"], draft["invoiceNumber"]) == ("Draft", invoice.data["number"])
    with pytest.raises(Rejected) as info:  # the same number for the same vendor: BC's duplicate check
        conn.http.request("POST", memos, json_body=body)
    assert info.value.message == "Purchase Credit Memo CN-507 already exists for this vendor."

    account = next(r for r in read_all(conn, "gl_accounts")[0] if r["entity"] == "NW-US" and r["code"] == "6110")
    env.touch(stream="gl_accounts", ids=[account["external_id"]], set={"blocked": True})
    with pytest.raises(Rejected) as info:  # the resend finds the draft; posting it is refused
        conn.write(credit_note(vendor, "CN-507", invoice.data["number"]), idempotency_key="b")
    assert "Blocked must be equal to 'No'  in G/L Account: No.=6110" in info.value.message
    assert (info.value.field, info.value.value) == ("account", "6110")
    assert [m["status"] for m in read_all(conn, "purchase_credit_memos")[0]] == ["draft"]
