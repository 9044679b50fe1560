"""GL accounts from the ERP sandbox: whether an account takes entries comes with the master data, and the
ERP blocking (then unblocking) an account holds (then frees) the documents coded to it."""

from __future__ import annotations

import pytest
import requests

from tests.factories import expense_line, expense_report
from tests.support.pipeline import run
from workbench.models import ExceptionItem, GLAccount
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db


def erp_sets(erp_sandbox, account: GLAccount, **props) -> None:
    resp = requests.post(
        f"{erp_sandbox[1]}/sandbox/touch",
        json={"stream": "gl_accounts", "ids": [account.erp_id], "set": props},
        timeout=5,
    )
    resp.raise_for_status()
    assert len(resp.json()["touched"]) == 1


def test_the_master_data_sync_knows_which_accounts_take_entries(conns):
    erp, _ = conns

    assert run(erp, "master_data").status == "succeeded"

    for entity in ("NW-US", "NW-DE", "NW-FR"):
        refused = {a.code: a.refusal for a in GLAccount.objects.filter(entity__code=entity) if a.refusal}
        assert refused == {
            "8990": "is blocked in the ERP",
            "8100": "is a heading account, not a posting account",
            "2190": "does not allow direct posting",
        }


def test_blocking_then_unblocking_an_account_in_the_erp_holds_then_frees_its_documents(conns, erp_sandbox):
    erp, _ = conns
    assert run(erp, "master_data").status == "succeeded"
    account = GLAccount.objects.get(entity__code="NW-US", code="8120")
    docs = [expense_report(lines=[expense_line(gl_account="8120", cost_center="SALES")]) for _ in range(2)]
    documents_validate(documents=docs)
    held = ExceptionItem.objects.filter(code="BLOCKED_GL_ACCOUNT")
    assert not held.exists()

    erp_sets(erp_sandbox, account, blocked=True)
    assert run(erp, "master_data").status == "succeeded"

    assert held.filter(status="open").count() == 2
    assert held.values("group").distinct().count() == 1 and "is blocked in the ERP" in held.first().message

    erp_sets(erp_sandbox, account, blocked=False)
    assert run(erp, "master_data").status == "succeeded"

    assert set(held.values_list("status", flat=True)) == {"resolved"}
    account.refresh_from_db()
    assert account.refusal == ""
