"""Admin settings of procure-to-pay: approval thresholds, delegations, match tolerances (who changed them is kept)."""

from __future__ import annotations

from django.db import transaction

from workbench.errors import InvalidTransition
from workbench.models import ApprovalDelegation, ApprovalRule, MatchTolerance


@transaction.atomic
def approval_rule_save(*, rule: ApprovalRule, actor) -> ApprovalRule:
    rule.updated_by = actor
    rule.save()
    return rule


@transaction.atomic
def delegation_add(*, delegation: ApprovalDelegation, actor) -> ApprovalDelegation:
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
    from sync.tasks import rematch_open_invoices_task

    rematch_open_invoices_task.delay_on_commit(tolerance.entity_id)
    return tolerance
