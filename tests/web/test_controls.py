"""The hostile cases an auditor tries: self-approval, a body-named approver, a hidden override,
a split variance, a deleted user, an edited history row, a file that lies about its type."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError

from tests.conftest import make_person
from tests.factories import expense_line, expense_report, master_data
from tests.workbench.test_p2p import invoice, p2p, po, receive, stored  # noqa: F401 (p2p is a fixture)
from workbench.models import (
    ApiToken,
    ApprovalRule,
    AuditRecord,
    Employee,
    ExceptionItem,
    MatchTolerance,
    OverridePolicy,
    OverrideRequest,
)
from workbench.services import approvals
from workbench.services.audit import audit_seal_all, audit_verify
from workbench.services.item_actions import exception_item_assign
from workbench.services.overrides import override_defaults
from workbench.services.validation import documents_validate

pytestmark = pytest.mark.django_db
DECISIONS = "/api/p2p/approvals/decisions/"


def toast(response) -> str:
    return response.headers.get("HX-Trigger", "")


# --- approval decisions -----------------------------------------------------------------------------


@pytest.fixture
def routed(p2p):  # noqa: F811
    ApprovalRule.objects.create(entity=p2p, min_amount=0, levels=1)
    doc = stored()  # requested by E0013, first approver E0010
    (task,) = approvals.requisition_route(document=doc)
    Employee.objects.filter(code="E0010").update(email="olivia@example.com")
    Employee.objects.filter(code="E0013").update(email="rita@example.com")
    return doc, task


def test_a_person_cannot_approve_for_someone_else_by_naming_them(client, routed):
    doc, task = routed
    client.force_login(make_person("rita", "Finance analysts"))  # the requester, not the approver
    body = {"correlation_key": task.correlation_key, "state": "approved", "approver": "E0010"}
    r = client.post(DECISIONS, body, content_type="application/json")
    assert r.status_code == 403 and "signed-in approver" in r.json()["detail"]
    r = client.post(DECISIONS, {**body, "approver": ""}, content_type="application/json")
    assert r.status_code == 403 and "not the approver" in r.json()["detail"]
    doc.refresh_from_db()
    task.refresh_from_db()
    assert doc.business_status == "pending" and task.state == "requested"


def test_the_approver_decides_as_themself_and_the_trace_names_them(client, routed):
    doc, task = routed
    olivia = make_person("olivia", "Finance managers")
    olivia.email = "olivia@example.com"
    olivia.save()
    client.force_login(olivia)
    r = client.post(
        DECISIONS, {"correlation_key": task.correlation_key, "state": "approved"}, content_type="application/json"
    )
    assert r.status_code == 200 and r.json() == {"applied": True}
    doc.refresh_from_db()
    assert doc.business_status == "approved"


def test_nobody_approves_their_own_requisition(client, routed):
    doc, task = routed
    # Rita is made the step's approver (a misconfigured chain): the server still refuses her.
    type(task).objects.filter(pk=task.pk).update(approver_code="E0013")
    rita = make_person("rita", "Finance managers")
    rita.email = "rita@example.com"
    rita.save()
    client.force_login(rita)
    r = client.post(
        DECISIONS, {"correlation_key": task.correlation_key, "state": "approved"}, content_type="application/json"
    )
    assert r.status_code == 403 and "someone else must approve" in r.json()["detail"]
    doc.refresh_from_db()
    assert doc.business_status == "pending" and not doc.writes.exists()


def test_the_call_out_token_can_validate_and_nothing_else(client, routed):
    doc, task = routed
    callout = make_person("callout", "Integration: requisition validation")
    key = ApiToken.issue(callout, "Coupa Call Out")[1]
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    body = {"correlation_key": task.correlation_key, "state": "approved", "approver": "E0010"}
    assert client.post(DECISIONS, body, content_type="application/json", **auth).status_code == 403
    assert client.get("/api/exceptions/", **auth).status_code == 403
    assert client.get("/queue/", **auth).status_code == 302  # screens never read tokens: to the login page
    doc.refresh_from_db()
    assert doc.business_status == "pending"


# --- variance authority -----------------------------------------------------------------------------


def test_variance_authority_counts_the_whole_invoice_not_each_item(p2p, client, jobs_sent):  # noqa: F811
    po(lines=((10, "100.00"), (10, "100.00")))
    receive("PO-1", 1, 10, "r1")
    receive("PO-1", 2, 10, "r2")
    doc, _ = invoice("INV-SPLIT", [(1, 10, "106.00"), (2, 10, "106.00")])  # 60.00 over on each line
    items = list(ExceptionItem.objects.filter(document=doc, code="PRICE_VARIANCE"))
    assert len(items) == 2
    MatchTolerance.objects.create(entity=None, price_pct=Decimal("2"), accept_limit=Decimal("100"))
    client.force_login(make_person("ann", "Finance analysts"))
    r = client.post(f"/items/{items[0].pk}/accept-variance/", {"reason": "agreed"}, HTTP_HX_REQUEST="true")
    assert "above your authority" in toast(r) and "120.00" in toast(r)
    client.force_login(make_person("max", "Finance managers"))
    client.post(f"/items/{items[0].pk}/accept-variance/", {"reason": "agreed with buyer"}, HTTP_HX_REQUEST="true")
    items[0].refresh_from_db()
    assert items[0].status == "overridden"


# --- override governance ----------------------------------------------------------------------------


@pytest.fixture
def item(db, jobs_sent):
    master_data()
    override_defaults()
    doc = expense_report(lines=[expense_line(cost_center="", amount="12500.00")])
    documents_validate(documents=[doc])
    return ExceptionItem.objects.get(document=doc, code="MISSING_COST_CENTER")


def test_a_code_that_may_not_be_overridden_is_refused_even_when_posted_by_hand(client, item):
    ExceptionItem.objects.filter(pk=item.pk).update(code="BLOCKED_SUPPLIER")
    client.force_login(make_person("ann", "Finance analysts"))
    r = client.post(
        f"/items/{item.pk}/override/", {"reason_code": "BUSINESS_OK", "reason": "pay it"}, HTTP_HX_REQUEST="true"
    )
    assert "blocked in the ERP" in toast(r)
    item.refresh_from_db()
    assert item.status == "open" and not OverrideRequest.objects.exists()
    assert 'data-testid="override-form"' not in client.get(f"/items/{item.pk}/").content.decode()


def test_an_ownership_conflict_is_not_closed_through_the_generic_override(client, item):
    ExceptionItem.objects.filter(pk=item.pk).update(code="OWNERSHIP_CONFLICT")
    client.force_login(make_person("max", "Finance managers"))
    r = client.post(
        f"/items/{item.pk}/override/", {"reason_code": "BUSINESS_OK", "reason": "fine"}, HTTP_HX_REQUEST="true"
    )
    assert "master-data screen" in toast(r)
    item.refresh_from_db()
    assert item.status == "open"


def test_above_the_policy_amount_a_second_person_approves(client, item):
    assert item.amount_at_risk == Decimal("12500.00")  # above the default 10,000.00 an analyst may alone
    ann = make_person("ann", "Finance analysts")
    client.force_login(ann)
    r = client.post(f"/items/{item.pk}/override/", {"reason": "no code", "reason_code": ""}, HTTP_HX_REQUEST="true")
    assert "reason code" in toast(r)
    r = client.post(
        f"/items/{item.pk}/override/",
        {"reason_code": "ONE_OFF", "reason": "CFO offsite, coded later"},
        HTTP_HX_REQUEST="true",
    )
    assert "waits for a finance manager" in toast(r)
    item.refresh_from_db()
    assert item.status == "waiting"
    # The analyst cannot approve their own request (not a manager), nor can a manager who asked.
    assert client.post(f"/items/{item.pk}/override/decide/", {"decision": "approve"}).status_code == 403
    max_ = make_person("max", "Finance managers")
    OverrideRequest.objects.filter(item=item).update(requested_by=max_)
    client.force_login(max_)
    r = client.post(f"/items/{item.pk}/override/decide/", {"decision": "approve"}, HTTP_HX_REQUEST="true")
    assert "asked for this override yourself" in toast(r)
    OverrideRequest.objects.filter(item=item).update(requested_by=ann)
    r = client.post(f"/items/{item.pk}/override/decide/", {"decision": "refuse"}, HTTP_HX_REQUEST="true")
    assert "why the override is refused" in toast(r)
    r = client.post(
        f"/items/{item.pk}/override/decide/", {"decision": "approve", "reason": "ok once"}, HTTP_HX_REQUEST="true"
    )
    assert "approved and applied" in toast(r)
    item.refresh_from_db()
    req = OverrideRequest.objects.get(item=item)
    assert item.status == "overridden"
    assert (req.state, req.requested_by, req.decided_by) == ("approved", ann, max_)
    report = client.get("/audit/overrides/?format=csv")
    body = b"".join(report.streaming_content).decode()
    assert "ONE_OFF" in body and ",ann,approved,max," in body


def test_within_policy_an_analyst_overrides_alone(client, item):
    OverridePolicy.objects.create(code="MISSING_COST_CENTER", overridable=True, approval_above=Decimal("20000"))
    client.force_login(make_person("ann", "Finance analysts"))
    client.post(f"/items/{item.pk}/override/", {"reason_code": "BUSINESS_OK", "reason": "coded in ERP"})
    item.refresh_from_db()
    assert item.status == "overridden" and OverrideRequest.objects.get().state == "applied"


def test_evidence_is_judged_by_its_content_not_its_name(client, item, tmp_path, settings):
    settings.EVIDENCE_DIR = tmp_path
    client.force_login(make_person("ann", "Finance analysts"))
    fake = SimpleUploadedFile("invoice.pdf", b"<html><script>alert(1)</script></html>", "application/pdf")
    r = client.post(f"/items/{item.pk}/evidence/", {"evidence": fake}, HTTP_HX_REQUEST="true")
    assert "must be a PDF" in toast(r) and not item.evidence.exists()
    real = SimpleUploadedFile("../../etc/passwd.pdf", b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF", "text/plain")
    client.post(f"/items/{item.pk}/evidence/", {"evidence": real}, HTTP_HX_REQUEST="true")
    (ev,) = item.evidence.all()
    assert ev.content_type == "application/pdf" and ev.name == "passwd.pdf" and (tmp_path / ev.path).is_file()
    download = client.get(f"/evidence/{ev.pk}/")
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert "attachment" in download["Content-Disposition"]
    assert item.events.filter(action="evidence_added").exists()


# --- history that cannot be rewritten ---------------------------------------------------------------


def test_a_user_with_history_is_deactivated_not_deleted(item):
    ann = make_person("ann", "Finance analysts")
    exception_item_assign(item=item, assignee=ann, actor=ann)
    with pytest.raises(ProtectedError):
        ann.delete()
    assert item.events.filter(actor=ann).exists()


def test_the_database_refuses_to_edit_or_delete_history(item):
    for sql in (
        "UPDATE workbench_exceptionevent SET reason = 'edited'",
        "DELETE FROM workbench_documentevent",
        "UPDATE workbench_auditrecord SET action = 'edited'",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql)


def test_config_changes_are_recorded_with_who_made_them(admin_client):
    admin_client.post(
        "/p2p/settings/tolerances/",
        {"price_pct": "3", "qty_abs": "0", "amount_abs": "10", "accept_limit": "500"},
    )
    record = AuditRecord.objects.filter(source="workbench.MatchTolerance").last()
    assert record is not None and record.actor_name == "admin" and Decimal(record.data["after"]["accept_limit"]) == 500


def test_audit_verify_passes_then_names_the_row_edited_behind_its_back(item, capsys):
    call_command("audit_verify")
    assert "audit chain intact" in capsys.readouterr().out
    event = item.events.first()
    table = "workbench_exceptionevent"
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE waits for no deferred checks
            cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_guard")
            cur.execute(f"UPDATE {table} SET reason = 'nothing to see' WHERE id = %s", [event.pk])
            cur.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_guard")
        else:
            cur.execute(f"DROP TRIGGER {table}_guard")
            cur.execute(f"UPDATE {table} SET reason = 'nothing to see' WHERE id = %s", [event.pk])
    with pytest.raises(CommandError, match=rf"{table} row {event.pk} .* was changed"):
        call_command("audit_verify")


def test_an_edited_audit_record_breaks_the_chain_at_that_row(item):
    audit_seal_all()
    target = AuditRecord.objects.order_by("seq")[3]
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute("ALTER TABLE workbench_auditrecord DISABLE TRIGGER workbench_auditrecord_guard")
        else:
            cur.execute("DROP TRIGGER workbench_auditrecord_guard")
        cur.execute("UPDATE workbench_auditrecord SET actor_name = 'someone else' WHERE id = %s", [target.pk])
        if connection.vendor == "postgresql":
            cur.execute("ALTER TABLE workbench_auditrecord ENABLE TRIGGER workbench_auditrecord_guard")
    verdict = audit_verify()
    assert not verdict.ok and f"#{target.seq} " in verdict.broken[0] and "changed" in verdict.broken[0]


def test_a_refused_evidence_file_files_no_override(client, item, tmp_path, settings):
    settings.EVIDENCE_DIR = tmp_path
    client.force_login(make_person("ann", "Finance analysts"))
    fake = SimpleUploadedFile("proof.pdf", b"<html>not a pdf</html>", "application/pdf")
    r = client.post(
        f"/items/{item.pk}/override/",
        {"reason_code": "ONE_OFF", "reason": "see proof", "evidence": fake},
        HTTP_HX_REQUEST="true",
    )
    assert "must be a PDF" in toast(r)
    item.refresh_from_db()
    assert item.status == "open" and not OverrideRequest.objects.exists() and not item.evidence.exists()


def test_re_validation_leaves_an_override_waiting_for_its_manager(client, item):
    client.force_login(make_person("ann", "Finance analysts"))
    client.post(f"/items/{item.pk}/override/", {"reason_code": "ONE_OFF", "reason": "coded later"})
    item.refresh_from_db()
    assert item.status == "waiting"
    documents_validate(documents=[item.document])  # the rule still fails, as it must until approved
    item.refresh_from_db()
    assert item.status == "waiting"


def test_an_auditor_reads_settings_and_mappings_but_every_field_is_disabled(client):
    client.force_login(make_person("aud", "Auditors"))
    for url in ("/p2p/settings/", "/mappings/"):
        page = client.get(url).content.decode()
        assert 'data-testid="read-only"' in page and "<fieldset disabled" in page, url
    assert client.post("/p2p/settings/tolerances/", {"price_pct": "9"}).status_code == 403


def test_an_integration_engineer_opens_the_queue_on_technical_items(client):
    client.force_login(make_person("eng", "Integration engineers"))
    assert 'value="technical" checked' in client.get("/queue/").content.decode()
    assert 'value="" checked' in client.get("/queue/?category=").content.decode()  # "All" is one click
    client.force_login(make_person("ann", "Finance analysts"))
    assert 'value="" checked' in client.get("/queue/").content.decode()


def test_the_progress_panel_says_an_override_waits_for_a_manager(client, item):
    client.force_login(make_person("ann", "Finance analysts"))
    client.post(f"/items/{item.pk}/override/", {"reason_code": "ONE_OFF", "reason": "coded later"})
    assert 'data-testid="step-override"' in client.get(f"/items/{item.pk}/").content.decode()


def test_sorting_by_amount_never_compares_currencies(client, db, jobs_sent):
    master_data()
    master_data("NW-DE", "EUR")
    documents_validate(
        documents=[
            expense_report(lines=[expense_line(cost_center="", amount="900.00")]),
            expense_report(lines=[expense_line(cost_center="", amount="50.00")]),
            expense_report(
                entity="NW-DE", currency="EUR", lines=[expense_line(cost_center="", amount="500.00", currency="EUR")]
            ),
        ]
    )
    client.force_login(make_person("ann", "Finance analysts"))
    page = client.get("/queue/?sort=-amount").content.decode()
    assert 'data-testid="sort-note"' in page
    items = list(ExceptionItem.objects.order_by("currency", "-amount_at_risk").values_list("pk", flat=True))
    positions = [page.index(f'data-item="{pk}"') for pk in items]
    assert positions == sorted(positions)  # EUR block, then USD block, each largest first


def test_the_admin_site_answers_non_staff_plainly(client, admin_client):
    assert admin_client.get("/admin/").status_code == 200
    anonymous = client.get("/admin/")
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    client.force_login(make_person("ann", "Finance analysts"))
    refused = client.get("/admin/workbench/connection/")
    assert refused.status_code == 403 and "Not part of your role" in refused.content.decode()


def test_an_over_long_reason_is_refused_not_cut(client, item):
    client.force_login(make_person("ann", "Finance analysts"))
    r = client.post(
        f"/items/{item.pk}/override/", {"reason_code": "ONE_OFF", "reason": "x" * 4001}, HTTP_HX_REQUEST="true"
    )
    assert "Keep it to 4,000 characters (4,001 given)" in toast(r)
    assert not OverrideRequest.objects.exists()
