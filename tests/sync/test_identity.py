"""Employees from the identity provider (SCIM sandbox) and field ownership, against real sandboxes."""

from __future__ import annotations

import pytest
import requests

from connectors.sandboxkit.kit import run_in_thread
from connectors.scim.sandbox.server import ScimSandbox
from tests.conftest import SMALL_WORLD, TODAY
from tests.support.pipeline import full_sync, run
from workbench.models import Connection, Document, Employee, ExceptionItem, MasterDataLink
from workbench.services.ownership import OwnershipError, ownership_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def scim_sandbox():
    sandbox = ScimSandbox(data_path=None, seed=7, today=TODAY, **SMALL_WORLD)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    server.shutdown()


@pytest.fixture
def directory(scim_sandbox):
    return Connection.objects.create(
        name="Entra ID directory (SCIM)",
        kind="scim",
        role="identity",
        config={"base_url": scim_sandbox[1], "token": "sandbox-scim-token", "timeout": 2},
    )


def conflicts():
    return ExceptionItem.objects.filter(code="OWNERSHIP_CONFLICT")


def test_employees_come_from_the_directory_with_their_ids_in_the_crosswalk(conns, directory):
    erp, _ = conns
    assert run(directory, "identity_pull").status == "skipped"  # entities come from the ERP first
    assert run(erp, "master_data").status == "succeeded"
    result = run(directory, "identity_pull")
    assert result.status == "succeeded" and result.records_read == Employee.objects.count()
    links = MasterDataLink.objects.filter(object_type="employee", system="scim", status="confirmed")
    assert links.count() == Employee.objects.count()
    emp = Employee.objects.exclude(manager_code="").select_related("entity").first()
    assert emp.cost_center and emp.manager_code
    assert links.filter(code=emp.code, entity_code=emp.entity.code).exists()
    assert not conflicts().exists()  # ERP and directory agree on the seeded world
    assert run(directory, "identity_pull").records_read == 0  # incremental: nothing changed


def test_a_deactivated_directory_user_stops_their_unposted_reports(conns, directory, scim_sandbox):
    erp, expense = conns
    full_sync(erp, expense)
    run(directory, "identity_pull")
    waiting = (
        Document.objects.filter(kind="expense_report", financial_status="not_posted")
        .exclude(exceptions__code="INACTIVE_EMPLOYEE")
        .select_related("entity")
        .first()
    )
    assert waiting is not None
    posted = Document.objects.filter(kind="expense_report", party_code=waiting.party_code, financial_status="posted")
    requests.post(f"{scim_sandbox[1]}/sandbox/deactivate", json={"employee_number": waiting.party_code}, timeout=5)

    assert run(directory, "identity_pull").status == "succeeded"
    assert Employee.objects.get(code=waiting.party_code, entity=waiting.entity).status == "inactive"
    item = ExceptionItem.objects.get(document=waiting, code="INACTIVE_EMPLOYEE", status="open")
    assert "inactive" in item.message
    assert not ExceptionItem.objects.filter(document__in=posted, code="INACTIVE_EMPLOYEE").exists()
    # The ERP still says active, and the ERP does not own an employee's status: nothing changes.
    assert run(erp, "master_data").status == "succeeded"
    assert Employee.objects.get(code=waiting.party_code, entity=waiting.entity).status == "inactive"


def test_an_update_from_a_non_owning_system_changes_nothing_and_raises_a_conflict(
    conns, directory, erp_sandbox, admin_user
):
    erp, _ = conns
    run(erp, "master_data")
    run(directory, "identity_pull")
    emp = Employee.objects.select_related("entity").order_by("entity__code", "code").first()
    before = (emp.name, emp.email, emp.status)
    bc_id = next(d["id"] for d in erp_sandbox[0].store.all("employees") if d["number"] == emp.code)
    requests.post(
        f"{erp_sandbox[1]}/sandbox/touch",
        json={"stream": "employees", "ids": [bc_id], "set": {"email": "someone.else@northwind.example"}},
        timeout=5,
    )

    assert run(erp, "master_data").status == "succeeded"
    emp.refresh_from_db()
    assert (emp.name, emp.email, emp.status) == before  # the directory owns these: not applied
    items = {i.detail["field"]: i for i in conflicts().filter(status="open")}
    assert set(items) == {"name", "email"}
    assert {
        "object": "employee",
        "code": emp.code,
        "current": before[1],
        "incoming": "someone.else@northwind.example",
        "source": "erp",
        "owner": "identity",
    }.items() <= items["email"].detail.items()
    assert "not applied" in items["email"].message and items["email"].group is not None
    # Read again, the same disagreement is the same item, not a second one.
    requests.post(
        f"{erp_sandbox[1]}/sandbox/touch",
        json={"stream": "employees", "ids": [bc_id], "set": {"email": "someone.else@northwind.example"}},
        timeout=5,
    )
    run(erp, "master_data")
    assert conflicts().count() == 2

    # An admin decides the ERP owns e-mail addresses: the waiting value is applied and the item closes.
    assert ownership_set(object_type="employee", field="email", owner="erp", actor=admin_user, reason="HR typo") == 1
    emp.refresh_from_db()
    assert emp.email == "someone.else@northwind.example"
    assert conflicts().get(detail__field="email").status == "resolved"
    with pytest.raises(OwnershipError):
        ownership_set(object_type="employee", field="email", owner="erp", actor=admin_user)
    with pytest.raises(OwnershipError):
        ownership_set(object_type="employee", field="<script>", owner="erp", actor=admin_user)


def test_without_the_owning_system_connected_the_erp_fills_the_field(conns):
    erp, _ = conns
    run(erp, "master_data")
    emp = Employee.objects.order_by("code").first()
    Employee.objects.filter(pk=emp.pk).update(email="stale@northwind.example")
    from workbench.services.masterdata import masterdata_upsert

    masterdata_upsert(
        stream="employees",
        records=[
            {
                "entity": emp.entity.code,
                "code": emp.code,
                "name": emp.name,
                "email": "fresh@northwind.example",
                "status": "active",
            }
        ],
    )
    emp.refresh_from_db()
    assert emp.email == "fresh@northwind.example" and not conflicts().exists()


def test_a_posting_still_queued_when_its_employee_leaves_is_withdrawn_and_sent_once_they_return(
    conns, directory, scim_sandbox, erp_sandbox
):
    from tests.support.pipeline import drain_outbox, erp_documents_per_number
    from workbench.services import postings

    erp, expense = conns
    assert run(erp, "master_data").status == "succeeded"
    run(directory, "identity_pull")
    assert run(expense, "expense_pull").status == "succeeded"  # clean reports queued; no worker has sent them yet
    queued = Document.objects.filter(kind="expense_report", financial_status="posting").select_related("entity").first()
    assert queued is not None
    number = postings.erp_document_number(queued)
    url = scim_sandbox[1]
    requests.post(f"{url}/sandbox/deactivate", json={"employee_number": queued.party_code}, timeout=5)

    run(directory, "identity_pull")
    queued.refresh_from_db()
    assert queued.financial_status == "not_posted"
    assert ExceptionItem.objects.filter(document=queued, code="INACTIVE_EMPLOYEE", status="open").exists()
    assert queued.events.filter(action="posting_withdrawn").exists()
    drain_outbox()
    assert erp_documents_per_number(erp_sandbox)[number] == 0  # the ERP never saw it

    # HR brings the person back (Entra sends a SCIM PATCH): the report is queued again and posted once.
    user_id = MasterDataLink.objects.get(
        object_type="employee", system="scim", code=queued.party_code, entity_code=queued.entity.code
    ).external_id
    resp = requests.patch(
        f"{url}/scim/v2/Users/{user_id}",
        timeout=5,
        headers={"Authorization": "Bearer sandbox-scim-token"},
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": True}],
        },
    )
    assert resp.status_code == 200, resp.text
    run(directory, "identity_pull")
    drain_outbox()
    queued.refresh_from_db()
    assert queued.financial_status == "posted"
    assert erp_documents_per_number(erp_sandbox)[number] == 1
    assert not ExceptionItem.objects.filter(document=queued, code="INACTIVE_EMPLOYEE", status="open").exists()


def test_a_posting_already_on_its_way_is_not_withdrawn_and_the_trace_says_so(conns, directory, scim_sandbox):
    from workbench.models import OutboundWrite

    erp, expense = conns
    assert run(erp, "master_data").status == "succeeded"
    run(directory, "identity_pull")
    assert run(expense, "expense_pull").status == "succeeded"
    queued = Document.objects.filter(kind="expense_report", financial_status="posting").first()
    OutboundWrite.objects.filter(document=queued).update(status="sending")  # a worker has claimed it
    requests.post(f"{scim_sandbox[1]}/sandbox/deactivate", json={"employee_number": queued.party_code}, timeout=5)

    run(directory, "identity_pull")
    queued.refresh_from_db()
    assert (
        queued.financial_status == "posting"
        and OutboundWrite.objects.filter(document=queued, status="sending").exists()
    )
    assert "may already be in the ERP" in queued.events.get(action="posting_not_withdrawn").message
