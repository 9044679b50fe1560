"""Snoozed items wake through the real sync path: the change is made in a sandbox (real HTTP, in-thread),
the scheduled job reads it, the service that applies it wakes the items waiting for it, and the document
is re-validated so the item resolves when its cause is gone. Jobs are called as functions."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from connectors.coupa.sandbox.server import CoupaSandbox
from connectors.sandboxkit.kit import run_in_thread
from sync.tasks import check_connections_task
from tests.conftest import SMALL_WORLD, TODAY
from tests.factories import expense_line, expense_report
from tests.support.pipeline import run
from tests.support.sandboxes import p2p_connections
from workbench.models import AccountingPeriod, Connection, CostCenter, Employee, ExceptionItem, Supplier, TaxCode
from workbench.selectors import document_trace
from workbench.services.snooze import exception_item_snooze
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db
ENTITY = "NW-US"


def touch(erp_sandbox, body: dict) -> dict:
    resp = requests.post(f"{erp_sandbox[1]}/sandbox/touch", json=body, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def report_in_a_closed_period(n_lines: int, **line):
    """An expense report of NW-US in its latest closed period, otherwise valid against the ERP's master data."""
    period = AccountingPeriod.objects.filter(entity__code=ENTITY, closed=True).order_by("-start").first()
    emp = Employee.objects.filter(entity__code=ENTITY, status="active").order_by("code").first()
    values = {
        "date": (period.start + timedelta(days=4)).isoformat(),
        "cost_center": CostCenter.objects.filter(entity__code=ENTITY).order_by("code").first().code,
        "tax_code": TaxCode.objects.filter(entity__code=ENTITY).order_by("code").first().code,
        **line,
    }
    doc = expense_report(
        entity=ENTITY,
        employee_code=emp.code,
        employee_name=emp.name,
        lines=[expense_line(**values) for _ in range(n_lines)],
    )
    documents_validate(documents=[doc])
    return doc, period


def status(item: ExceptionItem) -> str:
    item.refresh_from_db()
    return item.status


def test_each_erp_master_data_event_wakes_only_its_own_item(conns, erp_sandbox, analyst, jobs_sent):
    erp, _ = conns
    assert run(erp, "master_data").status == "succeeded"
    supplier = Supplier.objects.filter(entity__code=ENTITY, blocked="").order_by("code").first()
    employee = Employee.objects.filter(entity__code=ENTITY, status="active").order_by("-code").first()
    touch(erp_sandbox, {"stream": "suppliers", "ids": [supplier.erp_id], "set": {"blocked": "All"}})
    touch(erp_sandbox, {"stream": "employees", "ids": [employee.erp_id], "set": {"status": "Inactive"}})
    assert run(erp, "master_data").status == "succeeded"
    assert Supplier.objects.get(pk=supplier.pk).blocked == "All"

    doc, period = report_in_a_closed_period(3)
    by_supplier, by_approver, by_period = ExceptionItem.objects.filter(document=doc, code="CLOSED_PERIOD").order_by(
        "line__line_no"
    )
    exception_item_snooze(
        item=by_supplier, actor=analyst, wait_for="supplier_unblocked", wait_key=f"supplier:{ENTITY}:{supplier.code}"
    )
    exception_item_snooze(
        item=by_approver, actor=analyst, wait_for="approver_back", wait_key=f"employee:{ENTITY}:{employee.code}"
    )
    exception_item_snooze(item=by_period, actor=analyst, wait_for="period_open")
    assert by_period.wait_key == f"period:{ENTITY}:{period.code}"

    # The supplier is unblocked in the ERP: the next pull wakes the item waiting for it, and only that one.
    touch(erp_sandbox, {"stream": "suppliers", "ids": [supplier.erp_id], "set": {"blocked": " "}})
    assert run(erp, "master_data").status == "succeeded"
    assert [status(by_supplier), status(by_approver), status(by_period)] == ["open", "waiting", "waiting"]
    woke = by_supplier.events.get(action="woke")
    assert woke.reason.startswith(f"Woke: supplier {supplier.code} of {ENTITY} is unblocked")

    # The approver is active again.
    touch(erp_sandbox, {"stream": "employees", "ids": [employee.erp_id], "set": {"status": "Active"}})
    assert run(erp, "master_data").status == "succeeded"
    assert [status(by_approver), status(by_period)] == ["open", "waiting"]
    assert f"approver {employee.code} of {ENTITY} is back" in by_approver.events.get(action="woke").reason

    # The period opens: the item wakes, and the pull's re-validation resolves all three (their cause is gone).
    touch(erp_sandbox, {"stream": "accounting_periods", "ids": [period.erp_id], "set": {"closed": False}})
    touch(erp_sandbox, {"stream": "accounting_periods", "ids": [period.erp_id], "set": {"dateLocked": False}})
    assert run(erp, "master_data").status == "succeeded"
    assert [status(by_supplier), status(by_approver), status(by_period)] == ["resolved"] * 3
    actions = list(by_period.events.values_list("action", flat=True))
    assert actions == ["raised", "snoozed", "woke", "rule_passed"]
    assert any(r["action"] == "woke" and r.get("code") == "CLOSED_PERIOD" for r in document_trace(doc))
    assert by_period.events.get(action="woke").reason.startswith(f"Woke: period {period.code} of {ENTITY} is open")


def test_a_cost_center_added_in_the_erp_wakes_and_resolves_the_item_waiting_for_it(
    conns, erp_sandbox, analyst, jobs_sent
):
    erp, _ = conns
    assert run(erp, "master_data").status == "succeeded"
    added = touch(erp_sandbox, {"stream": "cost_centers", "company": ENTITY, "count": 0, "add": 1})["added"][0]
    period = AccountingPeriod.objects.filter(entity__code=ENTITY, closed=False).order_by("start").first()
    doc, _ = report_in_a_closed_period(
        1, cost_center=added["code"], date=(period.start + timedelta(days=2)).isoformat()
    )
    item = ExceptionItem.objects.get(document=doc, code="UNKNOWN_COST_CENTER")
    exception_item_snooze(item=item, actor=analyst, wait_for="master_data_value")
    assert item.wait_key == f"cost_center:{ENTITY}:{added['code']}"

    assert run(erp, "master_data").status == "succeeded"
    assert status(item) == "resolved"
    assert list(item.events.values_list("action", flat=True)) == ["raised", "snoozed", "woke", "rule_passed"]


def test_a_connection_that_recovers_wakes_the_items_waiting_for_it(conns, analyst, jobs_sent):
    erp, _ = conns
    assert run(erp, "master_data").status == "succeeded"
    doc, _ = report_in_a_closed_period(1)
    item = ExceptionItem.objects.get(document=doc, code="CLOSED_PERIOD")
    exception_item_snooze(item=item, actor=analyst, wait_for="connection_up", wait_key=f"connection:{erp.pk}")
    # The outage as health recorded it; the sandbox answers again, and beat's probe sees it.
    Connection.objects.filter(pk=erp.pk).update(health=Connection.Health.DOWN, consecutive_failures=5)
    check_connections_task()
    assert status(item) == "open"
    assert item.events.get(action="woke").reason.startswith(f"Woke: connection {erp.name} answers")
    assert ("sync.revalidate_document", {"document_id": doc.pk}) in jobs_sent


@pytest.fixture
def coupa_sandbox():
    sandbox = CoupaSandbox(data_path=None, seed=7, today=TODAY, **SMALL_WORLD)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    server.shutdown()


def test_a_goods_receipt_wakes_and_rematches_the_invoice_waiting_for_it(erp_sandbox, coupa_sandbox, analyst, jobs_sent):
    erp, coupa = p2p_connections(erp_sandbox[1], coupa_sandbox[1])
    assert run(erp, "master_data").status == "succeeded"
    assert run(erp, "posting_status").status == "succeeded"
    assert run(coupa, "procurement_pull").status == "succeeded"
    item = (
        ExceptionItem.objects.filter(code="NOT_RECEIVED", status="open", line__po_line__isnull=False)
        .select_related("document", "line__po_line")
        .order_by("id")
        .first()
    )
    assert item is not None, "the seeded world invoices goods not received yet"
    exception_item_snooze(item=item, actor=analyst, wait_for="receipt_arrived")
    po = item.document.po_number
    assert item.wait_key == f"receipt:{po}"

    for ln in item.document.lines.select_related("po_line").exclude(po_line=None):
        body = {"order-line": {"po-number": po, "line-num": ln.po_line.line_no}, "quantity": str(ln.quantity)}
        resp = requests.post(
            f"{coupa_sandbox[1]}/api/receiving_transactions",
            json=body,
            headers={"X-COUPA-API-KEY": "sandbox-secret"},
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
    assert run(coupa, "procurement_pull").status == "succeeded"

    assert status(item) == "resolved"
    actions = list(item.events.values_list("action", flat=True))
    assert actions[:3] == ["raised", "snoozed", "woke"] and actions[-1] == "rule_passed"
    assert item.events.get(action="woke").reason.startswith(f"Woke: the goods receipt for {po} arrived")
