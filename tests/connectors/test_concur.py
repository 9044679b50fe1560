"""The Concur connector against its FIS v4 sandbox (in-thread HTTP server, no Django)."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import date
from decimal import Decimal

import pytest
import requests

from connectors.base import ConfigError, MalformedPayload, Page, Rejected, TransientError, WriteOp
from connectors.concur import mapping
from connectors.concur.connector import ConcurConnector
from connectors.concur.sandbox.server import ConcurSandbox
from connectors.sandboxkit.kit import run_in_thread
from connectors.sandboxkit.world import build_world

SEED, TODAY = 7, date(2026, 11, 20)
WORLD_ARGS = {"seed": SEED, "today": TODAY, "n_employees": 40, "n_lines": 300}
WORLD = build_world(**WORLD_ARGS)
MALFORMED = {r.doc_id: r for r in WORLD.reports if r.malformed}
GOOD = {r.doc_id: r for r in WORLD.reports if not r.malformed}
HOSTILE = "<script>alert(1)</script> & \"quotes\" 'single' — Ünïcode"


def start(data_path: str | None = None):
    sandbox = ConcurSandbox(data_path=data_path, **WORLD_ARGS)
    server, url = run_in_thread(sandbox)
    return sandbox, server, url


def stop(server) -> None:
    # shutdown() waits for serve_forever's 0.5 s poll: let it finish in the background.
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


@pytest.fixture
def env():
    sandbox, server, url = start()
    yield sandbox, url
    stop(server)


@pytest.fixture
def url(env) -> str:
    return env[1]


def connector(url: str, **extra) -> ConcurConnector:
    return ConcurConnector(
        {"base_url": url, "client_id": "workbench", "client_secret": "sandbox-secret", "timeout": 5, **extra}
    )


def read_all(conn: ConcurConnector) -> tuple[list[dict], list, list[Page]]:
    pages = list(conn.read("expense_reports", None))
    return [r for p in pages for r in p.records], [e for p in pages for e in p.errors], pages


def control(url: str, path: str, body: dict | None = None) -> dict:
    resp = requests.post(f"{url}{path}", json=body or {}, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def stats(url: str) -> dict:
    return requests.get(f"{url}/sandbox/stats", timeout=5).json()


def ack(conn: ConcurConnector, doc_ids: list[str]):
    return conn.write(WriteOp("acknowledge", {"doc_ids": doc_ids}), idempotency_key=f"ack-{len(doc_ids)}")


def confirmation(doc_id: str, number: str = "108001", status: str = "success") -> WriteOp:
    docs = [{"company": "NW-US", "document_number": number, "fiscal_year": "2026", "posting_date": "2026-11-20"}]
    return WriteOp(
        "posting_confirmation",
        {
            "doc_id": doc_id,
            "status": status,
            "documents": docs if status == "success" else [],
            "messages": []
            if status == "success"
            else [{"id": "BC-PERIOD", "text": "Posting date is not within your range of allowed posting dates."}],
        },
    )


# --- check / discover ---------------------------------------------------------------------------


def test_check_ok_and_bad_credentials(url):
    result = connector(url).check()
    assert result.ok, result.message
    assert f"{len(WORLD.reports)} expense document(s) waiting" in result.message

    bad = ConcurConnector({"base_url": url, "client_id": "workbench", "client_secret": "wrong"})
    result = bad.check()
    assert not result.ok
    assert "credentials" in result.message
    with pytest.raises(ConfigError):
        list(bad.read("expense_reports", None))


def test_check_unreachable_is_a_result_not_a_crash():
    result = connector("http://127.0.0.1:9", timeout=1).check()  # discard port: nothing listens
    assert not result.ok and "not reachable" in result.message


def test_discover():
    (spec,) = connector("http://unused").discover()
    assert (spec.name, spec.canonical, spec.primary_key, spec.cursor_field) == (
        "expense_reports",
        "expense_report",
        "external_id",
        None,
    )


# --- reading ------------------------------------------------------------------------------------


def test_full_read_maps_every_ready_document(url):
    records, errors, pages = read_all(connector(url))

    assert len(pages) == 1 and pages[-1].next_cursor is None  # 71 documents fit one page of 100
    assert {r["external_id"] for r in records} == set(GOOD)
    lines_served = sum(len(r["lines"]) for r in records) + sum(len(r.lines) for r in MALFORMED.values())
    assert lines_served == 300 == sum(len(r.lines) for r in WORLD.reports)

    # The two broken documents are quarantined with a message a person can act on.
    by_id = {e.external_id: e for e in errors}
    assert set(by_id) == set(MALFORMED)
    for doc_id, report in MALFORMED.items():
        err = by_id[doc_id]
        assert doc_id in err.message and err.raw and len(err.raw) <= 4096
        if report.malformed == "amount_not_a_number":
            assert "entryApprovedAmount is not a number: '12,50 EUR'" in err.message
            assert report.lines[0].entry_id in err.message
        else:
            assert "no 'report' section" in err.message


def test_records_follow_the_canonical_shape(url):
    records, _, _ = read_all(connector(url))
    by_id = {r["external_id"]: r for r in records}
    report = next(r for r in GOOD.values() if any(ln.original_currency != r.currency for ln in r.lines))
    rec = by_id[report.doc_id]

    assert rec["report_id"] == report.report_id and rec["number"] == report.number
    assert rec["entity"] == report.entity and rec["currency"] == report.currency
    assert rec["employee_code"] == report.employee.code and rec["employee_name"] == report.employee.name
    assert rec["total"] == report.total and isinstance(rec["total"], Decimal)
    assert rec["approval_status"] == "approved" and rec["version"] == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["submitted_at"])
    assert rec["submitted_at"][:10] == report.submitted.isoformat()
    assert rec["approved_at"][:10] == report.approved.isoformat()
    for line, world_line in zip(rec["lines"], report.lines, strict=True):
        assert line["external_id"] == world_line.allocation_id and line["entry_id"] == world_line.entry_id
        assert line["date"] == world_line.date.isoformat()
        assert (line["category"], line["category_name"]) == (world_line.expense_type, world_line.expense_type_name)
        assert (line["description"], line["merchant"]) == (world_line.description, world_line.merchant)
        assert line["amount"] == world_line.amount and line["currency"] == report.currency
        assert line["original_amount"] == world_line.original_amount
        assert line["original_currency"] == world_line.original_currency
        assert line["gl_account"] == world_line.gl_account and line["tax_code"] == world_line.tax_code
        assert (line["cost_center"], line["project"]) == (world_line.cost_center, world_line.project)

    # Planted problems come through as data (for the workbench's rules), not as errors.
    missing_cc = [
        (r.doc_id, i) for r in GOOD.values() for i, ln in enumerate(r.lines) if ln.problem == "missing_cost_center"
    ]
    assert missing_cc and all(by_id[d]["lines"][i]["cost_center"] == "" for d, i in missing_cc)


def test_acknowledged_documents_leave_the_queue(url):
    conn = connector(url)
    records, errors, _ = read_all(conn)
    assert read_all(conn)[0] == records  # unacknowledged: the same documents again

    ids = [r["external_id"] for r in records] + [e.external_id for e in errors]
    result = ack(conn, ids)
    assert result.status == "acknowledged" and result.data["acknowledged"] == ids
    assert read_all(conn)[:2] == ([], [])

    again = ack(conn, ids[:3])  # re-acknowledging is a success, not an error
    assert again.data["acknowledged"] == ids[:3]
    s = stats(url)
    assert s["by_status"]["READY"] == 0 and s["by_status"]["ACKNOWLEDGED"] == len(ids)
    assert s["acknowledgements"] == len(ids) + 3 and s["docs"][ids[0]]["acknowledgements"] == 2


def test_acknowledging_an_unknown_document_is_rejected(url):
    with pytest.raises(Rejected) as exc:
        ack(connector(url), ["NOPE"])
    assert exc.value.code == "116" and "does not exist" in exc.value.message


def test_touch_adds_exactly_n_reports(url):
    conn = connector(url)
    records, errors, _ = read_all(conn)
    ack(conn, [r["external_id"] for r in records] + [e.external_id for e in errors])

    created = control(url, "/sandbox/touch", {"stream": "expense_reports", "count": 4})["created"]
    assert len(created) == 4
    records, errors, _ = read_all(conn)
    assert [r["external_id"] for r in records] == created and not errors
    assert all(r["approval_status"] == "approved" and r["lines"] for r in records)
    more = control(url, "/sandbox/touch", {"stream": "expense_reports", "count": 2})["created"]
    assert not set(more) & set(created)  # deterministic, but never the same report twice


def test_redeliver_puts_documents_back_in_the_queue(url):
    conn = connector(url)
    records, errors, _ = read_all(conn)
    ack(conn, [r["external_id"] for r in records] + [e.external_id for e in errors])
    chosen = [r["external_id"] for r in records[5:8]]

    out = control(url, "/sandbox/redeliver", {"doc_ids": chosen + ["UNKNOWN"]})
    assert out == {"redelivered": chosen, "already_ready": [], "unknown": ["UNKNOWN"]}
    again, _, _ = read_all(conn)
    assert [r["external_id"] for r in again] == chosen
    assert again == records[5:8]  # same content and version: the workbench must see a duplicate


def test_paging_follows_next_links_and_survives_acks_between_pages(url):
    conn = connector(url, page_size=10)
    pages = list(conn.read("expense_reports", None))
    assert len(pages) == 8 and [p.next_cursor for p in pages[:3]] == [{"page": 1}, {"page": 2}, {"page": 3}]
    assert pages[-1].next_cursor is None
    ids = [r["external_id"] for p in pages for r in p.records] + [e.external_id for p in pages for e in p.errors]
    assert len(ids) == len(set(ids)) == len(WORLD.reports)

    # A caller that acknowledges each page as soon as it is stored must still get every document.
    seen = []
    for page in conn.read("expense_reports", None):
        page_ids = [r["external_id"] for r in page.records] + [e.external_id for e in page.errors]
        seen += page_ids
        if page_ids:
            ack(conn, page_ids)
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert stats(url)["by_status"]["READY"] == 0


def test_hostile_description_round_trips_and_console_escapes_it(url):
    created = control(url, "/sandbox/touch", {"stream": "expense_reports", "count": 1, "description": HOSTILE})
    doc_id = created["created"][0]
    records, _, _ = read_all(connector(url))
    (rec,) = [r for r in records if r["external_id"] == doc_id]
    assert rec["lines"] and all(line["description"] == HOSTILE for line in rec["lines"])

    page = requests.get(f"{url}/?status=READY", timeout=5).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


# --- faults -------------------------------------------------------------------------------------


def test_throttling_is_transient_with_retry_after(url):
    control(url, "/sandbox/faults", {"throttle_rate": 1, "retry_after": 2})
    with pytest.raises(TransientError) as exc:
        list(connector(url).read("expense_reports", None))
    assert exc.value.retry_after == 2.0


def test_server_errors_are_transient_and_writes_uncertain(url):
    control(url, "/sandbox/faults", {"error_rate": 1})
    conn = connector(url)
    with pytest.raises(TransientError) as exc:
        list(conn.read("expense_reports", None))
    assert not exc.value.uncertain
    with pytest.raises(TransientError) as exc:
        conn.write(confirmation(next(iter(GOOD))), idempotency_key="k")
    assert exc.value.uncertain  # a 500 after the body was sent: look it up before resending


def test_malformed_body_is_malformed_payload(url):
    control(url, "/sandbox/faults", {"malformed_rate": 1})
    with pytest.raises(MalformedPayload):
        list(connector(url).read("expense_reports", None))


def test_timeout_after_the_work_is_uncertain(url):
    doc_id = next(iter(GOOD))
    control(url, "/sandbox/faults", {"timeout_rate": 1, "hang_seconds": 2})
    with pytest.raises(TransientError) as exc:
        connector(url, timeout=0.5).write(confirmation(doc_id), idempotency_key="k")
    assert exc.value.uncertain
    assert stats(url)["docs"][doc_id]["status"] == "POSTED"  # it did land: why sync must look first


# --- confirmations ------------------------------------------------------------------------------


def test_posting_confirmation_shows_on_the_expense_report(url):
    conn = connector(url)
    doc_id = next(iter(GOOD))
    ack(conn, [doc_id])
    result = conn.write(confirmation(doc_id, "108001"), idempotency_key="post-1")
    assert (result.external_id, result.status) == (doc_id, "confirmed")
    assert result.data["document_numbers"] == ["108001"]

    info = requests.get(f"{url}/sandbox/reports/{GOOD[doc_id].report_id}", timeout=5).json()
    report = conn.get_expense_report(info["userId"], GOOD[doc_id].report_id)
    assert report["reportId"] == GOOD[doc_id].report_id
    assert report["postingStatus"] == "Posted" and report["erpDocumentNumber"] == "108001"
    assert report["approvedAmount"]["value"] == GOOD[doc_id].total

    with pytest.raises(Rejected):  # another user's id does not see the report
        conn.get_expense_report("00000000-0000-0000-0000-000000000000", GOOD[doc_id].report_id)


def test_same_confirmation_twice_is_one_confirmed_document(url):
    conn = connector(url)
    doc_id = next(iter(GOOD))
    first = conn.write(confirmation(doc_id, "108002"), idempotency_key="post-2")
    second = conn.write(confirmation(doc_id, "108002"), idempotency_key="post-2")
    assert first == second
    s = stats(url)
    assert s["by_status"]["POSTED"] == 1
    assert s["docs"][doc_id] == {
        "status": "POSTED",
        "erpDocumentNumber": "108002",
        "acknowledgements": 0,
        "confirmations": 2,
        "payments": 0,
    }
    assert doc_id not in {r["external_id"] for r in read_all(conn)[0]}  # posted: out of the queue


def test_error_confirmation_marks_the_report_failed(url):
    conn = connector(url)
    doc_id = next(iter(GOOD))
    conn.write(confirmation(doc_id, status="error"), idempotency_key="post-err")
    info = requests.get(f"{url}/sandbox/reports/{doc_id}", timeout=5).json()
    assert info["status"] == "FAILED" and info["erpDocumentNumber"] is None
    assert info["state"]["messages"][0]["text"].startswith("Posting date is not within")
    assert "Posting date is not within" in requests.get(f"{url}/?status=FAILED", timeout=5).text


def test_confirmation_for_an_unknown_document_is_rejected(url):
    with pytest.raises(Rejected) as exc:
        connector(url).write(confirmation("0" * 32), idempotency_key="x")
    assert exc.value.code == "116" and "This document does not exist." in exc.value.message


def test_payment_confirmation_is_recorded(url):
    conn = connector(url)
    doc_id = next(iter(GOOD))
    report = GOOD[doc_id]
    conn.write(confirmation(doc_id), idempotency_key="post")
    op = WriteOp(
        "payment_confirmation",
        {
            "doc_id": doc_id,
            "status_code": "CP",
            "amount": report.total,
            "currency": report.currency,
            "date": "2026-11-25",
            "reference": "PAY-0001",
        },
    )
    result = conn.write(op, idempotency_key="pay")
    assert (result.external_id, result.status) == (doc_id, "payment_confirmed")
    conn.write(op, idempotency_key="pay")  # a resend is not a second payment

    s = stats(url)
    assert s["payment_confirmations"] == 2 and s["docs"][doc_id]["payments"] == 1
    info = requests.get(f"{url}/sandbox/reports/{doc_id}", timeout=5).json()
    expense = conn.get_expense_report(info["userId"], report.report_id)
    assert expense["paymentStatus"] == "Paid" and expense["paymentConfirmedAmount"]["value"] == report.total
    assert info["state"]["payments"][0]["reference"] == "PAY-0001"


# --- persistence and mapping edge cases -----------------------------------------------------------


def test_state_survives_a_restart(tmp_path):
    path = str(tmp_path / "concur.sqlite")
    _, server, url = start(path)
    conn = connector(url)
    doc_ids = list(GOOD)[:5]
    ack(conn, doc_ids)
    conn.write(confirmation(doc_ids[0], "108009"), idempotency_key="p")
    created = control(url, "/sandbox/touch", {"stream": "expense_reports", "count": 1})["created"]
    server.shutdown()  # synchronously: the second sandbox must read what the first one wrote
    server.server_close()

    _, server, url = start(path)
    try:
        s = stats(url)
        assert s["documents"] == len(WORLD.reports) + 1
        assert s["by_status"] == {"READY": len(WORLD.reports) + 1 - 5, "ACKNOWLEDGED": 4, "POSTED": 1, "FAILED": 0}
        assert s["docs"][doc_ids[0]]["erpDocumentNumber"] == "108009"
        again = control(url, "/sandbox/touch", {"stream": "expense_reports", "count": 1})["created"]
        assert again != created  # the touch counter was kept too
    finally:
        stop(server)


def test_mapping_accepts_a_string_document_and_splits_allocations():
    report = next(iter(GOOD.values()))
    from connectors.concur.sandbox.documents import transaction
    from connectors.sandboxkit.kit import dumps

    item = json.loads(dumps(transaction(report)))
    entry = item["document"]["expenseEntry"][0]
    alloc = entry["allocation"][0]
    half = float(Decimal(str(entry["entryApprovedAmount"])) / 2)
    entry["allocation"] = [
        {
            **alloc,
            "allocationId": "A1",
            "allocationPercentage": 50,
            "journal": [{**alloc["journal"][0], "amountGross": half}],
        },
        {
            **alloc,
            "allocationId": "A2",
            "allocationPercentage": 50,
            "allocationCustom1Code": "OPS",
            "journal": [{**alloc["journal"][0], "amountGross": half}],
        },
    ]
    item["document"] = json.dumps(item["document"])  # documentFormatAs: a JSON string
    record, error = mapping.map_transaction(item)
    assert error is None
    first, second = record["lines"][:2]
    assert (first["external_id"], second["external_id"]) == ("A1", "A2")
    assert first["entry_id"] == second["entry_id"] == entry["entryId"]
    assert first["amount"] + second["amount"] == report.lines[0].amount
    assert second["cost_center"] == "OPS"


def test_mapping_names_missing_ids():
    record, error = mapping.map_transaction({"docType": "expense", "document": {}})
    assert record is None and error.external_id is None and "transaction id is missing" in error.message
    record, error = mapping.map_transaction({"id": "D1", "document": {"report": {}, "employee": {}}})
    assert error.external_id == "D1" and "report.employeeCurrencyAlphaCode is missing" in error.message


def test_previously_acknowledged_answer_of_real_fis_counts_as_success(monkeypatch):
    # Real FIS answers a repeated acknowledgement with code 101 FAILURE (doc example 03).
    conn = connector("http://unused")
    answer = [
        {"code": 0, "docId": "A", "systemId": None, "acknowledgeResult": "SUCCESS", "errorMessage": ""},
        {
            "code": 101,
            "docId": "B",
            "systemId": None,
            "acknowledgeResult": "FAILURE",
            "errorMessage": "This document was previously acknowledged by SystemId: null.",
        },
    ]
    monkeypatch.setattr(conn, "_post", lambda path, body, headers: answer)
    assert ack(conn, ["A", "B"]).data["acknowledged"] == ["A", "B"]


def test_big_seed_pages_quickly():
    sandbox = ConcurSandbox(data_path=None, seed=SEED, today=TODAY, n_employees=200, n_lines=50000)
    server, url = run_in_thread(sandbox)
    try:
        conn = connector(url)
        assert len(sandbox._ready) > 10_000
        for page in (0, 55, 110):
            started = time.perf_counter()
            body = conn._get_page({"page": page, "limit": 100})
            assert len(body["content"]) == 100 and time.perf_counter() - started < 0.5
        started = time.perf_counter()
        ack(conn, [item["id"] for item in body["content"]])
        assert time.perf_counter() - started < 0.5
        assert conn._get_page({"page": 0, "limit": 1})["page"]["totalElements"] == len(sandbox._order) - 100
    finally:
        stop(server)
