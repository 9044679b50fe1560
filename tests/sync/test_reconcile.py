"""Nightly master-data reconciliation against the Business Central sandbox running as a process.

Drift is planted with the sandbox's /sandbox/drift, which changes the ERP without moving
lastModifiedDateTime: exactly what the incremental master-data sync cannot see.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from django.test import override_settings

from connectors.base import TransientError
from sync import reconcile, runs
from sync.jobs import run_job
from sync.models import DriftRecord, ReconciliationRun, SyncRun
from sync.tasks import reconcile_master_data_task
from tests.conftest import SMALL_WORLD, SandboxProcess, make_connections
from workbench import jobs
from workbench.models import Budget, Connection, Currency, Employee, GLAccount, PaymentTerm, Project, Supplier
from workbench.services.masterdata import masterdata_upsert

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def erp_sandbox(tmp_path):
    sandbox = SandboxProcess("business_central", tmp_path, **SMALL_WORLD)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def erp(erp_sandbox):
    """The ERP connection with its master data synced once."""
    conn, _ = make_connections(erp_sandbox.url, "http://127.0.0.1:9", timeout=5)
    master_data_sync(conn)
    conn.refresh_from_db()
    return conn


def master_data_sync(conn) -> None:
    run = run_job(SyncRun.objects.create(connection=conn, job="master_data", triggered_by="test"))
    assert run.status == "succeeded", run.message


def control(sandbox: SandboxProcess, path_: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"{sandbox.url}{path_}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def reconcile_now(conn) -> ReconciliationRun:
    return reconcile.run_reconciliation(ReconciliationRun.objects.create(connection=conn, triggered_by="test"))


def drift_of(run) -> set[tuple[str, str, str]]:
    return set(run.drift.values_list("stream", "key", "kind"))


def first(qs):
    """A record the incremental read will not bring back by chance: not its company's newest one
    (reads resume at the newest stamp, inclusive, so that one is read again every time)."""
    return qs.order_by("code").first()


def test_a_reconciliation_right_after_the_sync_finds_nothing(erp):
    run = reconcile_now(erp)

    assert run.status == "succeeded", run.message
    assert drift_of(run) == set()
    assert (run.added, run.changed, run.deleted, run.unreadable) == (0, 0, 0, 0)
    total = sum(m.objects.count() for m in (Employee, GLAccount, Project, Supplier, Budget))
    assert run.compared > total > 800
    assert run.streams_done == run.streams_total == 11
    assert run.summary["employees"]["compared"] == Employee.objects.count()
    # Decimal percents and whole-number decimals compare equal to what the sync stored.
    assert run.summary["payment_terms"] == {
        "compared": PaymentTerm.objects.count(),
        "added": 0,
        "changed": 0,
        "deleted": 0,
        "unreadable": 0,
    }
    assert run.summary["currencies"]["compared"] == Currency.objects.count() > 0
    assert run.message.startswith("No drift")


def test_it_finds_exactly_the_drift_planted_behind_the_sync(erp, erp_sandbox):
    account = GLAccount.objects.get(entity__code="NW-DE", code="6110")
    employee = first(Employee.objects.filter(entity__code="NW-US", status="active"))
    supplier = first(Supplier.objects.filter(entity__code="NW-DE", blocked=""))
    leaver = first(Employee.objects.filter(entity__code="NW-FR"))
    project = first(Project.objects.filter(entity__code="NW-DE"))
    budget = Budget.objects.filter(entity__code="NW-DE").order_by("id").first()
    planted = control(
        erp_sandbox,
        "/sandbox/drift",
        {
            "add": [
                {"stream": "cost_centers", "entity": "NW-US", "code": "NEWCC", "name": "Planted cost center"},
                {
                    "stream": "budgets",
                    "entity": "NW-DE",
                    "cost_center": budget.cost_center,
                    "gl_account": budget.gl_account,
                    "period": "2030-01",
                    "amount": 1234.5,
                },
            ],
            "change": [
                {
                    "stream": "gl_accounts",
                    "entity": "NW-DE",
                    "code": "6110",
                    "field": "name",
                    "value": "Renamed quietly",
                },
                {
                    "stream": "employees",
                    "entity": "NW-US",
                    "code": employee.code,
                    "field": "status",
                    "value": "Terminated",
                },
                {
                    "stream": "suppliers",
                    "entity": "NW-DE",
                    "code": supplier.code,
                    "field": "blocked",
                    "value": "Payment",
                },
            ],
            "delete": [
                {"stream": "employees", "entity": "NW-FR", "code": leaver.code},
                {"stream": "projects", "entity": "NW-DE", "code": project.code},
            ],
        },
    )
    master_data_sync(erp)  # the incremental sync does not see any of it

    run = reconcile_now(erp)

    assert run.status == "succeeded", run.message
    budget_key = f"NW-DE/{budget.cost_center}/{budget.gl_account}/2030-01"
    assert drift_of(run) == {
        ("cost_centers", "NW-US/NEWCC", "added"),
        ("budgets", budget_key, "added"),
        ("gl_accounts", "NW-DE/6110", "changed"),
        ("employees", f"NW-US/{employee.code}", "changed"),
        ("suppliers", f"NW-DE/{supplier.code}", "changed"),
        ("employees", f"NW-FR/{leaver.code}", "deleted"),
        ("projects", f"NW-DE/{project.code}", "deleted"),
    }
    assert (run.added, run.changed, run.deleted) == (2, 3, 2)
    drift = {(d.stream, d.key): d for d in run.drift.all()}
    # Changes name only the fields that differ, ours first, then the ERP's.
    assert drift["gl_accounts", "NW-DE/6110"].diffs == {"name": [account.name, "Renamed quietly"]}
    assert drift["employees", f"NW-US/{employee.code}"].diffs == {"status": ["active", "terminated"]}
    assert drift["suppliers", f"NW-DE/{supplier.code}"].diffs == {"blocked": ["", "Payment"]}
    added = drift["cost_centers", "NW-US/NEWCC"]
    assert added.diffs == {"name": [None, "Planted cost center"], "erp_id": [None, planted["added"][0]["id"]]}
    assert added.erp_id == planted["added"][0]["id"]
    assert drift["budgets", budget_key].diffs["amount"] == [None, "1234.5"]
    gone = drift["employees", f"NW-FR/{leaver.code}"]
    assert gone.diffs["name"] == [leaver.name, None] and gone.erp_id == leaver.erp_id
    assert run.summary["employees"] == {**run.summary["employees"], "changed": 1, "deleted": 1, "added": 0}
    # Reported, not repaired: the workbench's copies are as they were.
    assert GLAccount.objects.get(pk=account.pk).name == account.name
    assert Employee.objects.filter(pk=leaver.pk).exists()


def test_it_finds_drift_in_payment_terms_and_currencies(erp, erp_sandbox):
    term = PaymentTerm.objects.get(entity__code="NW-DE", code="30 DAYS")  # not its company's newest row
    gone = Currency.objects.get(entity__code="NW-US", code="GBP")
    planted = control(
        erp_sandbox,
        "/sandbox/drift",
        {
            "add": [
                {
                    "stream": "payment_terms",
                    "entity": "NW-FR",
                    "code": "90 DAYS",
                    "name": "Net 90 days",
                    "due_date_calculation": "90D",
                }
            ],
            "change": [
                {
                    "stream": "payment_terms",
                    "entity": "NW-DE",
                    "code": "30 DAYS",
                    "field": "discount_percent",
                    "value": 2.5,
                },
                {"stream": "currencies", "entity": "NW-DE", "code": "CHF", "field": "decimals", "value": "3:3"},
            ],
            "delete": [{"stream": "currencies", "entity": "NW-US", "code": "GBP"}],
        },
    )
    master_data_sync(erp)  # the incremental sync does not see any of it

    run = reconcile_now(erp)

    assert run.status == "succeeded", run.message
    assert drift_of(run) == {
        ("payment_terms", "NW-FR/90 DAYS", "added"),
        ("payment_terms", "NW-DE/30 DAYS", "changed"),
        ("currencies", "NW-DE/CHF", "changed"),
        ("currencies", "NW-US/GBP", "deleted"),
    }
    drift = {(d.stream, d.key): d for d in run.drift.all()}
    assert drift["payment_terms", "NW-DE/30 DAYS"].diffs == {"discount_percent": ["0", "2.5"]}
    assert drift["currencies", "NW-DE/CHF"].diffs == {"decimals": [2, 3]}
    assert drift["payment_terms", "NW-FR/90 DAYS"].diffs == {
        "name": [None, "Net 90 days"],
        "due_date_calculation": [None, "90D"],
        "discount_date_calculation": [None, ""],
        "discount_percent": [None, "0"],
        "erp_id": [None, planted["added"][0]["id"]],
    }
    assert drift["currencies", "NW-US/GBP"].diffs["symbol"] == ["£", None]
    assert run.summary["payment_terms"]["changed"] == 1 and run.summary["currencies"]["deleted"] == 1
    # Reported, not repaired.
    assert PaymentTerm.objects.get(pk=term.pk).discount_percent == 0 and Currency.objects.filter(pk=gone.pk).exists()


def test_a_touched_record_is_drift_only_until_the_incremental_sync_picks_it_up(erp, erp_sandbox):
    touched = control(erp_sandbox, "/sandbox/touch", {"stream": "gl_accounts", "company": "NW-US", "count": 2})[
        "touched"
    ]

    behind = reconcile_now(erp)
    master_data_sync(erp)
    caught_up = reconcile_now(erp)

    assert drift_of(behind) == {("gl_accounts", f"NW-US/{t['code']}", "changed") for t in touched}
    assert caught_up.status == "succeeded" and drift_of(caught_up) == set()


def test_the_task_is_safe_to_run_twice_and_one_run_at_a_time(erp, erp_sandbox):
    control(
        erp_sandbox,
        "/sandbox/drift",
        {
            "delete": [
                {
                    "stream": "projects",
                    "entity": "NW-US",
                    "code": first(Project.objects.filter(entity__code="NW-US")).code,
                }
            ]
        },
    )

    assert reconcile_master_data_task(connection=erp.name) == "succeeded"
    assert reconcile_master_data_task(connection=erp.pk) == "succeeded"
    one, two = ReconciliationRun.objects.order_by("id")
    assert drift_of(one) == drift_of(two) and len(drift_of(two)) == 1

    # While a run holds the lease, another is skipped, not run beside it.
    assert runs.claim(erp, reconcile.JOB)
    assert reconcile_master_data_task(connection=erp.name) == "skipped"
    runs.release(erp, reconcile.JOB)
    # A queued run that is already finished is not run again.
    assert reconcile_master_data_task(run_id=two.pk) == "gone"


def test_a_stream_read_again_after_a_transient_error_counts_each_record_once(erp, erp_sandbox, monkeypatch):
    leaver = first(Employee.objects.filter(entity__code="NW-DE"))
    control(
        erp_sandbox, "/sandbox/drift", {"delete": [{"stream": "employees", "entity": "NW-DE", "code": leaver.code}]}
    )
    real = reconcile.connector_for
    failed = []

    def flaky(connection):
        connector = real(connection)
        read = connector.read

        def read_once_broken(stream, cursor):
            for i, page in enumerate(read(stream, cursor)):
                if stream == "employees" and i == 1 and not failed:
                    failed.append(stream)
                    raise TransientError("HTTP 503 (planted)")
                yield page

        connector.read = read_once_broken
        return connector

    monkeypatch.setattr(reconcile, "connector_for", flaky)
    with override_settings(SYNC_BACKOFF_BASE=0.01):
        run = reconcile_now(erp)

    assert failed and run.status == "succeeded", run.message
    assert drift_of(run) == {("employees", f"NW-DE/{leaver.code}", "deleted")}
    assert run.summary["employees"]["compared"] == Employee.objects.count() - 1


def test_drift_a_concurrent_sync_fixes_meanwhile_is_dropped(erp, erp_sandbox, monkeypatch):
    control(
        erp_sandbox,
        "/sandbox/drift",
        {
            "change": [
                {
                    "stream": "gl_accounts",
                    "entity": "NW-DE",
                    "code": "6110",
                    "field": "name",
                    "value": "Fixed meanwhile",
                },
                {"stream": "gl_accounts", "entity": "NW-DE", "code": "6120", "field": "name", "value": "Still drifted"},
            ]
        },
    )
    account = GLAccount.objects.get(entity__code="NW-DE", code="6110")
    recheck = reconcile._drop_fixed_meanwhile

    def pull_lands_first(run, cmp):
        if cmp.stream == "gl_accounts":  # a master-data pull writes the ERP's value between our two reads
            masterdata_upsert(
                stream="gl_accounts",
                records=[
                    {
                        "entity": "NW-DE",
                        "code": "6110",
                        "name": "Fixed meanwhile",
                        "category": account.category,
                        "blocked": account.blocked,
                        "external_id": account.erp_id,
                    }
                ],
            )
        return recheck(run, cmp)

    monkeypatch.setattr(reconcile, "_drop_fixed_meanwhile", pull_lands_first)
    run = reconcile_now(erp)

    assert drift_of(run) == {("gl_accounts", "NW-DE/6120", "changed")}
    assert run.changed == 1


def test_it_waits_for_the_first_master_data_sync(erp_sandbox):
    conn, _ = make_connections(erp_sandbox.url, "http://127.0.0.1:9", timeout=5)

    run = reconcile_now(conn)

    assert run.status == "skipped" and "first master-data sync" in run.message
    assert not DriftRecord.objects.exists()


def test_the_page_shows_runs_and_their_drift(erp, erp_sandbox, client, engineer, monkeypatch, jobs_sent):
    client.force_login(engineer)  # reading is for everyone; starting a run is the integration engineer's
    control(
        erp_sandbox,
        "/sandbox/drift",
        {
            "add": [{"stream": "cost_centers", "entity": "NW-US", "code": "NEWCC", "name": "Planted cost center"}],
            "change": [
                {
                    "stream": "gl_accounts",
                    "entity": "NW-DE",
                    "code": "6110",
                    "field": "name",
                    "value": "Renamed quietly",
                }
            ],
        },
    )
    run = reconcile_now(erp)

    page = client.get("/sync/reconciliation/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"Drift found by run #{run.pk}" in html
    assert 'data-drift="cost_centers:NW-US/NEWCC"' in html and "Renamed quietly" in html

    only_changes = client.get(
        f"/sync/reconciliation/{run.pk}/?kind=changed", headers={"HX-Request": "true", "HX-Target": "drift"}
    )
    body = only_changes.content.decode()
    assert body.lstrip().startswith('<section id="drift"') and "<html" not in body
    assert "NW-DE/6110" in body and "NEWCC" not in body

    started = client.post(f"/sync/connections/{erp.pk}/reconcile/", headers={"HX-Request": "true"})
    new = ReconciliationRun.objects.latest("id")
    assert started.status_code == 200 and (jobs.RECONCILE_MASTER_DATA, {"run_id": new.pk}) in jobs_sent
    assert new.status == "queued" and new.triggered_by == "engineer"
    assert client.get(f"/sync/reconciliation/{new.pk}/progress/").status_code == 200  # still polling
    assert f'data-run="{new.pk}"' in client.get("/sync/reconciliation/").content.decode()
    assert "Still running" in client.get(f"/sync/reconciliation/{new.pk}/").content.decode()

    reconcile.run_reconciliation(new)
    done = client.get(f"/sync/reconciliation/{new.pk}/progress/")
    assert done.status_code == 286  # htmx: stop polling
    assert "reconciliationFinished" in done.headers["HX-Trigger"]


def test_fields_another_connected_system_owns_are_not_erp_drift(erp):
    """An employee's status belongs to the identity provider once one is connected: the ERP saying
    otherwise is no drift (no "Accept the ERP's values" could fix it), while the ERP's own fields still are."""

    employee = first(Employee.objects.filter(status="active"))
    Employee.objects.filter(pk=employee.pk).update(status="terminated")
    assert ("employees", f"{employee.entity.code}/{employee.code}", "changed") in drift_of(reconcile_now(erp))

    Connection.objects.create(name="Entra ID", kind="scim", role="identity", config={})
    assert ("employees", f"{employee.entity.code}/{employee.code}", "changed") not in drift_of(reconcile_now(erp))
    account = first(GLAccount.objects.all())
    GLAccount.objects.filter(pk=account.pk).update(name="Renamed here")
    assert ("gl_accounts", f"{account.entity.code}/{account.code}", "changed") in drift_of(reconcile_now(erp))
