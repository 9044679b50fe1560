"""The ServiceNow connector against its Table API sandbox (in-thread HTTP server, no Django)."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import requests

from connectors.base import ConfigError, MalformedPayload, Rejected, TransientError, WriteOp
from connectors.sandboxkit.kit import run_in_thread
from connectors.sandboxkit.procurement import build_p2p
from connectors.sandboxkit.world import build_world
from connectors.servicenow import mapping
from connectors.servicenow.connector import ServiceNowConnector
from connectors.servicenow.sandbox.server import ServiceNowSandbox

WORLD_ARGS = {"seed": 3, "today": date(2026, 11, 20), "n_employees": 20, "n_lines": 60}
WORLD = build_world(**WORLD_ARGS)
P2P = build_p2p(WORLD, seed=3)
ACTIVE = [e for e in WORLD.employees if e.status == "Active"]
LEAVER = next(e for e in WORLD.employees if e.status != "Active")
BASIC = ("workbench", "sandbox-secret")
HOSTILE = '<script>alert(1)</script> & "quotes" — Ünïcode'


def stop(server) -> None:
    # shutdown() waits for serve_forever's 0.5 s poll: let it finish in the background.
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


@pytest.fixture
def url():
    server, base = run_in_thread(ServiceNowSandbox(data_path=None, **WORLD_ARGS))
    yield base
    stop(server)


def oauth(url: str, **extra) -> ServiceNowConnector:
    return ServiceNowConnector(
        {"base_url": url, "client_id": "workbench", "client_secret": "sandbox-secret", "timeout": 5, **extra}
    )


def basic(url: str, password: str = "sandbox-secret", **extra) -> ServiceNowConnector:
    return ServiceNowConnector({"base_url": url, "username": "workbench", "password": password, "timeout": 5, **extra})


def api(url: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{url}/api/now/table/{path}", auth=BASIC, timeout=5, **kwargs)


def control(url: str, path: str, body: dict) -> dict:
    resp = requests.post(f"{url}{path}", json=body, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def read(conn: ServiceNowConnector, stream: str = "approvals", cursor=None):
    pages = list(conn.read(stream, cursor))
    return [r for p in pages for r in p.records], [e for p in pages for e in p.errors], pages


def create(conn: ServiceNowConnector, key: str = "req-2000:approve:1", approver: str | None = None, **payload):
    op = WriteOp(
        "create_approval",
        {
            "correlation_key": key,
            "document_number": "2000",
            "approver": approver or ACTIVE[0].code,
            "amount": "1250.50",
            "currency": "USD",
            "description": "Requisition 2000: laptops",
            "due_date": "2026-11-25",
            "sequence": 1,
            **payload,
        },
    )
    return conn.write(op, idempotency_key=key)


# --- auth, check, discover ----------------------------------------------------------------------


@pytest.mark.parametrize("make", [oauth, basic])
def test_check_passes_with_oauth_and_basic_and_fails_on_bad_credentials(url, make):
    assert make(url).check().ok
    bad = make(url, client_secret="wrong") if make is oauth else basic(url, password="wrong")
    result = bad.check()
    assert not result.ok and "credentials" in result.message
    with pytest.raises(ConfigError):
        read(bad)


def test_unauthenticated_calls_get_servicenows_error_envelope(url):
    resp = requests.get(f"{url}/api/now/table/sys_user", timeout=5)
    assert resp.status_code == 401
    assert resp.json() == {
        "error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
        "status": "failure",
    }


def test_discover_lists_approvals_and_users():
    specs = {s.name: s for s in oauth("http://unused").discover()}
    assert (specs["approvals"].canonical, specs["approvals"].cursor_field) == ("approval_decision", "sys_updated_on")
    assert specs["users"].canonical == "approver"


# --- reading ------------------------------------------------------------------------------------


def test_users_carry_employee_numbers_and_managers(url):
    users, errors, _ = read(oauth(url), "users")
    assert not errors
    by_code = {u["employee_number"]: u for u in users if u["employee_number"]}
    assert set(by_code) == {e.code for e in WORLD.employees}
    assert by_code[LEAVER.code]["active"] is False
    for code, manager in P2P.managers.items():
        assert by_code[code]["manager"] == manager
    assert {u["user_name"] for u in users if not u["employee_number"]} == {"admin", "workbench"}


def test_seeded_history_reads_as_canonical_decisions(url):
    records, errors, pages = read(oauth(url))
    assert not errors and pages[-1].next_cursor["sys_updated_on"]
    states = {r["state"] for r in records}
    assert {"approved", "rejected", "requested", "not_requested"} <= states
    rejected = next(r for r in records if r["state"] == "rejected")
    assert rejected["comments"] and rejected["decided_at"] == rejected["updated_at"]
    assert all(r["decided_at"] is None for r in records if r["state"] == "requested")


def test_values_are_strings_and_references_are_links(url):
    create(oauth(url))
    row = api(
        url, "GET", "sysapproval_approver", params={"sysparm_query": "u_correlation_id=req-2000:approve:1"}
    ).json()["result"][0]
    assert all(isinstance(v, str) for k, v in row.items() if k != "approver")
    assert row["approver"]["link"].endswith(f"/api/now/table/sys_user/{row['approver']['value']}")
    assert (row["u_amount"], row["order"], row["state"], row["due_date"]) == (
        "1250.50",
        "1",
        "requested",
        "2026-11-25 23:59:59",
    )
    one = api(url, "GET", f"sysapproval_approver/{row['sys_id']}").json()["result"]
    assert one["sys_id"] == row["sys_id"]
    missing = api(url, "GET", "sysapproval_approver/nope")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "No Record found"


def test_sysparm_query_operators_order_and_fields(url):
    def q(query: str, **params) -> list[dict]:
        resp = api(url, "GET", "sysapproval_approver", params={"sysparm_query": query, **params})
        assert resp.status_code == 200, resp.text
        return resp.json()["result"]

    everything = q("")
    approved = q("state=approved")
    assert approved and all(r["state"] == "approved" for r in approved)
    assert len(q("state!=approved")) == len(everything) - len(approved)
    assert {r["state"] for r in q("stateINapproved,rejected")} == {"approved", "rejected"}
    amounts = [float(r["u_amount"]) for r in q("u_amount>1000^ORDERBYDESCu_amount")]
    assert amounts and all(a > 1000 for a in amounts) and amounts == sorted(amounts, reverse=True)
    stamps = sorted(r["sys_updated_on"] for r in everything)
    newer = q(f"sys_updated_on>={stamps[5]}^ORDERBYsys_updated_on", sysparm_fields="sys_id,sys_updated_on")
    assert [r["sys_updated_on"] for r in newer] == [s for s in stamps if s >= stamps[5]] and set(newer[0]) == {
        "sys_id",
        "sys_updated_on",
    }
    walked = q(f"approver.employee_number={ACTIVE[0].code}", sysparm_fields="approver.employee_number")
    assert all(r == {"approver.employee_number": ACTIVE[0].code} for r in walked)
    bad = api(url, "GET", "sysapproval_approver", params={"sysparm_query": "colour=blue"})
    assert bad.status_code == 400 and bad.json()["status"] == "failure"


def test_offset_paging_has_total_count_and_link_headers(url):
    total = len(api(url, "GET", "sysapproval_approver").json()["result"])
    resp = api(url, "GET", "sysapproval_approver", params={"sysparm_limit": 5, "sysparm_offset": 5})
    assert resp.headers["X-Total-Count"] == str(total) and len(resp.json()["result"]) == 5
    assert 'sysparm_offset=10>;rel="next"' in resp.headers["Link"]
    assert 'sysparm_offset=0>;rel="prev"' in resp.headers["Link"]

    everything, _, _ = read(oauth(url))
    for size in (1, 3):  # 1: several seeded records share a second, so paging steps through it by offset
        records, _, pages = read(oauth(url, page_size=size))
        assert [r["external_id"] for r in records] == [r["external_id"] for r in everything]
        assert len(pages) >= total // size


def test_a_record_updated_mid_read_is_not_lost_and_others_are_not_skipped(url):
    conn = oauth(url, page_size=2)
    pages = conn.read("approvals", None)
    first = next(pages)
    requested = next(r for r in first.records if r["state"] == "requested")
    api(url, "PATCH", f"sysapproval_approver/{requested['external_id']}", json={"state": "approved"})
    rest = [r for p in pages for r in p.records]
    everything, _, _ = read(oauth(url))
    assert {r["external_id"] for r in first.records + rest} == {r["external_id"] for r in everything}
    assert next(r for r in rest if r["external_id"] == requested["external_id"])["state"] == "approved"


def test_a_decision_then_an_incremental_read_returns_only_that_record(url):
    conn = basic(url)
    sys_id = create(conn).external_id
    _, _, pages = read(conn)
    cursor = pages[-1].next_cursor

    resp = api(url, "PATCH", f"sysapproval_approver/{sys_id}", json={"state": "approved", "comments": "Fine by me."})
    assert resp.status_code == 200 and resp.json()["result"]["state"] == "approved"

    records, errors, pages = read(conn, cursor=cursor)
    assert not errors and len(records) == 1
    (rec,) = records
    assert (rec["external_id"], rec["state"], rec["comments"], rec["correlation_key"]) == (
        sys_id,
        "approved",
        "Fine by me.",
        "req-2000:approve:1",
    )
    assert rec["approver"] == ACTIVE[0].code and rec["decided_at"] == rec["updated_at"]
    assert rec["updated_at"] > cursor["sys_updated_on"].replace(" ", "T")
    assert read(conn, cursor=pages[-1].next_cursor)[0] == []  # nothing changed since


def test_a_decided_approval_cannot_be_decided_again(url):
    sys_id = create(oauth(url)).external_id
    assert api(url, "PATCH", f"sysapproval_approver/{sys_id}", json={"state": "rejected"}).status_code == 200
    again = api(url, "PATCH", f"sysapproval_approver/{sys_id}", json={"state": "approved"})
    assert again.status_code == 403 and again.json()["error"]["message"] == "Operation Failed"
    same = api(url, "PATCH", f"sysapproval_approver/{sys_id}", json={"state": "rejected"})
    assert same.status_code == 200  # the same state again is a no-op, not an error


def test_a_record_that_cannot_be_mapped_is_a_record_error(url):
    # An approval assigned to the admin account: no employee number to map it to a person.
    created = api(url, "POST", "sysapproval_approver", json={"approver": "admin", "u_document_number": "2999"})
    assert created.status_code == 201
    records, errors, _ = read(oauth(url))
    (error,) = errors
    assert error.external_id == created.json()["result"]["sys_id"]
    assert "has no employee_number" in error.message and error.summary["number"] == "2999"
    assert records  # the rest of the page still arrives


def test_due_dates_become_servicenow_utc_date_times():
    assert mapping.due_datetime("2026-11-25") == "2026-11-25 23:59:59"
    assert mapping.due_datetime("2026-11-25T16:30:00+01:00") == "2026-11-25 15:30:00"
    assert mapping.due_datetime("") == ""


def test_mapping_names_the_bad_field():
    record, error = mapping.map_record(mapping.approval, {"sys_id": "x", "state": "maybe"}, "sysapproval_approver")
    assert record is None and "state is not a ServiceNow approval state: 'maybe'" in error.message


# --- writing ------------------------------------------------------------------------------------


def test_create_approval_twice_makes_one_record(url):
    conn = oauth(url)
    first, second = create(conn), create(conn)
    assert first.status == second.status == "requested"
    assert first.external_id == second.external_id and len(first.external_id) == 32
    stats = requests.get(f"{url}/sandbox/stats", timeout=5).json()
    assert stats["approvals.created"] == 1 and stats["by_correlation_id"]["req-2000:approve:1"] == first.external_id


def test_a_timed_out_create_is_found_on_resend(url):
    control(url, "/sandbox/faults", {"timeout_rate": 1, "hang_seconds": 2, "timeout_methods": ["POST"]})
    with pytest.raises(TransientError) as exc:
        create(oauth(url, timeout=0.5))
    assert exc.value.uncertain
    control(url, "/sandbox/faults", {"timeout_rate": 0})
    result = create(oauth(url))
    assert result.message == "already requested"
    assert requests.get(f"{url}/sandbox/stats", timeout=5).json()["approvals.created"] == 1


def test_unknown_or_inactive_approver_is_rejected(url):
    with pytest.raises(Rejected) as exc:
        create(oauth(url), approver="E9999")
    assert (exc.value.code, exc.value.field, exc.value.value) == ("UNKNOWN_APPROVER", "approver", "E9999")
    with pytest.raises(Rejected) as exc:
        create(oauth(url), key="other", approver=LEAVER.code)
    assert exc.value.code == "INACTIVE_APPROVER"


def test_cancel_approval_is_idempotent_and_refused_once_decided(url):
    conn = oauth(url)
    sys_id = create(conn).external_id
    for _ in range(2):
        result = conn.write(
            WriteOp("cancel_approval", {"sys_id": sys_id, "comments": "Requisition withdrawn"}),
            idempotency_key="cancel-1",
        )
        assert (result.external_id, result.status) == (sys_id, "cancelled")
    row = api(url, "GET", f"sysapproval_approver/{sys_id}").json()["result"]
    assert (row["state"], row["comments"], row["sys_mod_count"]) == ("cancelled", "Requisition withdrawn", "1")

    decided = create(conn, key="req-2001:approve:1").external_id
    api(url, "PATCH", f"sysapproval_approver/{decided}", json={"state": "approved"})
    with pytest.raises(Rejected) as exc:
        conn.write(WriteOp("cancel_approval", {"sys_id": decided}), idempotency_key="cancel-2")
    assert exc.value.code == "ALREADY_DECIDED"
    with pytest.raises(Rejected) as exc:
        conn.write(WriteOp("cancel_approval", {"sys_id": "0" * 32}), idempotency_key="cancel-3")
    assert exc.value.code == "UNKNOWN_APPROVAL"


# --- sandbox helpers for the demo ---------------------------------------------------------------


def test_autodecide_approves_or_rejects_on_the_next_request(url):
    conn = oauth(url)
    small = create(conn, key="small", amount="500").external_id
    big = create(conn, key="big", amount="5000.00").external_id
    assert control(url, "/sandbox/autodecide", {"after_seconds": 0, "reject_over": "1000"})["after_seconds"] == 0

    by_id = {r["external_id"]: r for r in read(conn)[0]}
    assert by_id[small]["state"] == "approved"
    assert by_id[big]["state"] == "rejected" and "5000.00 USD is over the limit of 1000" in by_id[big]["comments"]
    assert not any(r["state"] == "requested" for r in by_id.values())

    control(url, "/sandbox/autodecide", {"after_seconds": None})
    later = create(conn, key="later").external_id
    assert {r["external_id"]: r for r in read(conn)[0]}[later]["state"] == "requested"


def test_console_escapes_text_and_lets_a_person_decide(url):
    sys_id = create(oauth(url), description=HOSTILE).external_id
    page = requests.get(f"{url}/", timeout=5).text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f'action="/sandbox/decide/{sys_id}"' in page and ACTIVE[0].name in page

    resp = requests.post(
        f"{url}/sandbox/decide/{sys_id}",
        data={"state": "rejected", "comments": "Too dear"},
        timeout=5,
        allow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    row = api(url, "GET", f"sysapproval_approver/{sys_id}").json()["result"]
    assert (row["state"], row["comments"]) == ("rejected", "Too dear")
    assert row["sys_updated_by"] == ACTIVE[0].email.split("@")[0]


# --- faults -------------------------------------------------------------------------------------


def test_throttling_is_transient_with_retry_after(url):
    control(url, "/sandbox/faults", {"throttle_rate": 1, "retry_after": 2})
    with pytest.raises(TransientError) as exc:
        read(basic(url))
    assert exc.value.retry_after == 2.0


def test_malformed_body_is_malformed_payload(url):
    control(url, "/sandbox/faults", {"malformed_rate": 1})
    with pytest.raises(MalformedPayload):
        read(basic(url))
