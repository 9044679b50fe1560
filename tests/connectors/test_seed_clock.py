"""Seeded history lies in the past: a sandbox seeded around the real today never shows an event
(submission, approval, order, receipt, invoice, user change) later than its real clock.

Otherwise the workbench's document trace puts "approved in concur" after "posted in the ERP".
Every timestamp a client can read is checked, except the few fields that are future by design
(due dates, need-by dates, a contract's end).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import requests

from connectors.business_central.sandbox.server import BusinessCentralSandbox
from connectors.concur.sandbox.server import ConcurSandbox
from connectors.coupa.sandbox.seed import COLLECTIONS
from connectors.coupa.sandbox.server import CoupaSandbox
from connectors.sandboxkit.kit import run_in_thread
from connectors.sandboxkit.procurement import build_p2p
from connectors.sandboxkit.world import build_world, seeded_until
from connectors.scim.sandbox.seed import seed_users
from connectors.scim.sandbox.server import STATIC_TOKEN, ScimSandbox
from connectors.servicenow.sandbox.seed import seed_tables
from connectors.servicenow.sandbox.server import ServiceNowSandbox

# Today as the sandboxes' clocks see it (they stamp in UTC), as the demo passes it.
TODAY = datetime.now(UTC).date()
SMALL = {"seed": 42, "today": TODAY, "n_employees": 40, "n_lines": 300}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# Deadlines and validity ends, not events: they may lie ahead.
FUTURE_BY_DESIGN = {"need-by-date", "net-due-date", "end-date", "due_date"}


def stop(server) -> None:
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


def stamps(value, path: str = "") -> Iterator[tuple[str, datetime]]:
    """Every (path, parsed timestamp) in a JSON value, skipping the future-by-design fields."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in FUTURE_BY_DESIGN:
                yield from stamps(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from stamps(item, f"{path}[{i}]")
    elif isinstance(value, str) and TIMESTAMP.match(value):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        yield path, parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def future(docs, now: datetime) -> list[tuple[str, str]]:
    found = [(path, t.isoformat()) for path, t in stamps(docs) if t > now]
    assert found or any(True for _ in stamps(docs)), "no timestamps read at all"
    return found


@pytest.fixture
def serve():
    servers = []

    def start(sandbox):
        server, url = run_in_thread(sandbox)
        servers.append(server)
        return url

    yield start
    for server in servers:
        stop(server)


def token(url: str, path: str) -> dict:
    body = {"grant_type": "client_credentials", "client_id": "workbench", "client_secret": "sandbox-secret"}
    resp = requests.post(f"{url}{path}", data=body, timeout=5)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def test_concur_seeded_reports_were_submitted_and_approved_before_now(serve):
    url = serve(ConcurSandbox(data_path=None, **SMALL))
    auth = token(url, ConcurSandbox.token_path)
    control = requests.post(f"{url}/sandbox/touch", json={"count": 3}, timeout=5)  # runtime-made reports too
    assert control.status_code == 200, control.text
    docs, page = [], 0
    while True:
        resp = requests.get(
            f"{url}/fi/v4/companies/transactiontypes/expense/transactions",
            params={"page": page, "limit": 100, "ignoreDocumentStatus": "true"},
            headers=auth,
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        docs += resp.json()["content"]
        if not any(link["rel"] == "next" for link in resp.json()["links"]):
            break
        page += 1
    summaries = [requests.get(f"{url}/sandbox/reports/{d['id']}", timeout=5).json()["summary"] for d in docs]
    now = datetime.now(UTC)

    assert len(docs) > 50
    assert future(docs, now) == []
    assert future(summaries, now) == []  # submitDate / approvedDate of the Expense v4 report
    approvals = [datetime.fromisoformat(s["approvedDate"]) for s in summaries]
    assert max(approvals) < datetime.combine(TODAY, datetime.min.time(), UTC)


def test_coupa_seeded_procurement_history_lies_before_now(serve):
    url = serve(CoupaSandbox(data_path=None, **{**SMALL, "n_lines": 0}))
    docs = {}
    for coll in COLLECTIONS:
        resp = requests.get(
            f"{url}/api/{coll}", params={"limit": 1000}, headers={"X-COUPA-API-KEY": "sandbox-secret"}, timeout=10
        )
        assert resp.status_code == 200, resp.text
        docs[coll] = resp.json()
    now = datetime.now(UTC)

    assert docs["purchase_orders"] and docs["receiving_transactions"] and docs["invoices"]
    assert future(docs, now) == []


def test_servicenow_seeded_approvals_were_decided_before_now(serve):
    url = serve(ServiceNowSandbox(data_path=None, **SMALL))
    rows = {}
    for table in ("sysapproval_approver", "sys_user"):
        resp = requests.get(f"{url}/api/now/table/{table}", auth=("workbench", "sandbox-secret"), timeout=10)
        assert resp.status_code == 200, resp.text
        rows[table] = resp.json()["result"]

    assert rows["sysapproval_approver"] and future(rows, datetime.now(UTC)) == []


def test_scim_seeded_users_changed_before_now(serve):
    url = serve(ScimSandbox(data_path=None, **SMALL))
    resp = requests.get(
        f"{url}/scim/v2/Users", params={"count": 100}, headers={"Authorization": f"Bearer {STATIC_TOKEN}"}, timeout=10
    )
    assert resp.status_code == 200, resp.text

    assert future(resp.json()["Resources"], datetime.now(UTC)) == []


def test_business_central_seeded_rows_changed_before_now():
    sandbox = BusinessCentralSandbox(data_path=None, **SMALL)

    assert future(sandbox.store.data, datetime.now(UTC)) == []


def test_seeded_event_days_are_before_today_whatever_the_hour():
    """Deterministic for a seed and a today: no seeded event day is today or later (the hour of the
    day the seed runs at does not matter)."""
    for day in (date(2026, 11, 20), date(2027, 3, 1), TODAY):
        world = build_world(seed=42, today=day, n_employees=40, n_lines=300)
        p2p = build_p2p(world, seed=42)
        assert max(r.approved for r in world.reports) < day
        assert max(r.submitted for r in p2p.requisitions) < day
        assert max(r.received for r in p2p.receipts) < day
        assert max(i.invoice_date for i in p2p.invoices) < day


def test_a_huge_directory_is_stamped_before_today_too():
    """Users are stamped minutes apart from a fixed day back: past a few tens of thousands the
    minutes ran into today and beyond. They stop at the last second before today instead."""
    until = seeded_until(TODAY)
    scim = seed_users(seed=42, today=TODAY, n_employees=45_000, n_lines=0)
    sn_users, _ = seed_tables(seed=42, today=TODAY, n_employees=87_000, n_lines=0)

    assert max(t for u in scim.values() for _, t in stamps(u["meta"])) == until
    assert max(t for u in sn_users.values() for _, t in stamps(u)) == until
