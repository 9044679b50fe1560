"""Admin settings of procure-to-pay: approval thresholds, delegations, match tolerances (who changed them is kept)."""

from __future__ import annotations

from django.db import transaction

from workbench import jobs
from workbench.errors import InvalidTransition
from workbench.models import ApprovalDelegation, ApprovalRule, Employee, MatchTolerance


def _employee(code: str, what: str) -> str:
    code = (code or "").strip()
    found = Employee.objects.filter(code__iexact=code).values_list("code", flat=True).first()
    if found is None:
        raise InvalidTransition(f"{what} '{code}' is not an employee code in the ERP.")
    return found


@transaction.atomic
def approval_rule_save(*, rule: ApprovalRule, actor) -> ApprovalRule:
    if rule.extra_approver:
        rule.extra_approver = _employee(rule.extra_approver, "Also approves:")
    rule.updated_by = actor
    rule.save()
    return rule


@transaction.atomic
def delegation_add(*, delegation: ApprovalDelegation, actor) -> ApprovalDelegation:
    delegation.approver = _employee(delegation.approver, "Approver")
    delegation.delegate = _employee(delegation.delegate, "Delegate")
    if delegation.approver == delegation.delegate:
        raise InvalidTransition("An approver cannot delegate to themselves.")
    if delegation.end < delegation.start:
        raise InvalidTransition("The delegation ends before it starts.")
    delegation.updated_by = actor
    delegation.save()
    return delegation


@transaction.atomic
def tolerance_save(*, tolerance: MatchTolerance, actor) -> MatchTolerance:
    """Save tolerances; open match exceptions of that entity are re-checked against them in the background."""
    tolerance.updated_by = actor
    tolerance.save()
    jobs.enqueue_on_commit(jobs.REMATCH_OPEN_INVOICES, entity_id=tolerance.entity_id)
    return tolerance
