"""Approval routing for requisitions: who must approve, in which order, and what happens to a decision.

The chain comes from the admin's `ApprovalRule`s (amount thresholds per legal entity and category):
`levels` approvers up the hierarchy that starts at the cost center's owner (or, if it has none, the
requester's manager). Then, per step:
- segregation of duties: the requester never approves their own requisition (the step moves one
  level up);
- delegation: an approver away (an active `ApprovalDelegation`) is replaced by their delegate;
- duplicates collapse (one person approves once).
No eligible approver is a NO_APPROVER item; a decision that breaks segregation of duties is a
SOD_VIOLATION item and does not count.

The workflow is here too: a valid requisition is routed and its first task sent to the approval
engine (through the outbox); decisions coming back (pulled or pushed) move the chain on, finish
it (the procurement suite is told, an approval queues the PO), or settle a routed invoice
variance; tasks past their SLA are escalated to the next manager up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from workbench import roles
from workbench.errors import WorkbenchError
from workbench.models import (
    ApprovalDelegation,
    ApprovalRule,
    ApprovalTask,
    CostCenter,
    Document,
    Employee,
    ExceptionItem,
)
from workbench.models.exceptions import Status
from workbench.selectors import supplier_changed_by
from workbench.selectors.calendars import Calendars
from workbench.services.exception_items import exception_item_raise, exception_item_transition
from workbench.services.item_actions import exception_item_override
from workbench.services.postings import (
    approval_cancel_enqueue,
    approval_task_enqueue,
    requisition_decision_enqueue,
)
from workbench.services.trace import document_event_add, system_user

log = logging.getLogger(__name__)


class ApproverRefused(WorkbenchError):
    """The caller may not decide this step (not its approver, or their own requisition)."""


def employee_codes_of(user) -> set[str]:
    """The employee records that are this account (matched by e-mail, as the directory provides)."""
    if not user.email:
        return set()
    return set(Employee.objects.filter(email__iexact=user.email).values_list("code", flat=True))


def decision_approver(*, user, task: ApprovalTask, named: str = "") -> str:
    """Whose decision this is: the signed-in approver, or (for the approval engine's service account
    only) the approver the engine authenticated. Refuses anyone else and self-approval."""
    if user.has_perm(roles.DECIDE):
        if not named:
            raise ApproverRefused("Name the approver the approval engine authenticated.")
        return named
    mine = employee_codes_of(user)
    if named and named not in mine:
        raise ApproverRefused("A decision is recorded for the signed-in approver only; it may not name someone else.")
    if task.approver_code not in mine:
        raise ApproverRefused(f"You are not the approver of this step; {task.approver_name or task.approver_code} is.")
    doc = task.document
    if doc.requester_code and doc.requester_code in mine:
        raise ApproverRefused(f"You requested {doc.number}: someone else must approve it.")
    if ":variance:" in task.correlation_key and mine & supplier_changed_by(doc):
        raise ApproverRefused(f"You changed supplier {doc.party_code}: someone else must approve its invoice.")
    return task.approver_code


MAX_LEVELS = 5


@dataclass
class Step:
    approver: str
    name: str
    reason: str
    delegated_from: str = ""


def _rule_for(doc: Document, categories: set[str]) -> ApprovalRule | None:
    """The most specific active rule whose threshold the amount reaches (entity and category beat 'any')."""
    rules = [
        r
        for r in ApprovalRule.objects.filter(active=True).filter(Q(entity=doc.entity) | Q(entity__isnull=True))
        if (not r.category or r.category in categories) and doc.total >= r.min_amount
    ]
    if not rules:
        return None
    return max(rules, key=lambda r: (r.levels, r.entity_id is not None, bool(r.category), r.min_amount))


def approval_chain(doc: Document) -> tuple[list[Step], str]:
    """The approvers of a requisition in order, and a note on how they were found ("" or a problem)."""
    lines = list(doc.lines.all())
    categories = {ln.category for ln in lines if ln.category}
    rule = _rule_for(doc, categories)
    levels = rule.levels if rule else 1
    rule_text = (
        f"rule {rule.entity.code if rule.entity else 'any entity'}/{rule.category or 'any category'} "
        f"from {rule.min_amount:,.0f}"
        if rule
        else "default (one level)"
    )
    employees = {e.code: e for e in Employee.objects.filter(entity=doc.entity)} if doc.entity_id else {}
    cost_center = next((ln.cost_center for ln in lines if ln.cost_center), "")
    owner = CostCenter.objects.filter(entity=doc.entity, code=cost_center).values_list("owner_code", flat=True).first()
    start = owner or (employees.get(doc.requester_code).manager_code if employees.get(doc.requester_code) else "")
    today = timezone.now().date()
    away = {d.approver: d for d in ApprovalDelegation.objects.filter(start__lte=today, end__gte=today)}

    steps: list[Step] = []
    seen = {doc.requester_code}
    person, level, hops = start, 1, 0
    while person and level <= levels and hops < MAX_LEVELS + 5:
        hops += 1
        nxt = employees[person].manager_code if person in employees else ""
        if person == doc.requester_code:  # segregation of duties: never one's own requisition
            person = nxt
            continue
        who, delegated_from = person, ""
        if person in away and away[person].delegate not in seen:
            who, delegated_from = away[person].delegate, person
        if who not in seen:
            why = "cost center owner" if level == 1 and person == owner else f"level {level}"
            emp = employees.get(who)
            steps.append(Step(who, emp.name if emp else who, f"{why} ({rule_text})", delegated_from))
            seen.add(who)
            level += 1
        person = nxt
    if rule and rule.extra_approver and rule.extra_approver not in seen:
        emp = employees.get(rule.extra_approver)
        steps.append(Step(rule.extra_approver, emp.name if emp else rule.extra_approver, f"named in {rule_text}"))
    problem = ""
    if not steps:
        problem = (
            f"No eligible approver for requisition {doc.number}: cost center {cost_center or '(none)'} has no owner "
            f"and requester {doc.requester_code} no manager other than themselves."
        )
    elif len(steps) < levels:
        problem = (
            f"{rule_text} needs {levels} approvers; only {len(steps)} eligible people were found above the requester."
        )
    return steps, problem


@transaction.atomic
def requisition_route(*, document: Document) -> list[ApprovalTask]:
    """Create the approval tasks of a requisition (once per version); the first is requested now."""
    existing = list(document.approval_tasks.filter(correlation_key__startswith=f"{document.posting_key}:"))
    if existing:
        return existing
    steps, problem = approval_chain(document)
    if problem:
        exception_item_raise(
            code="NO_APPROVER",
            fp=f"NO_APPROVER:doc{document.pk}:v{document.version}",
            document=document,
            message=problem,
            root_cause=document.entity_code,
        )
    if not steps:
        return []
    sla = _sla_hours(document)
    now = timezone.now()
    due = Calendars().sla_due(document.entity_id, sla, now)  # business hours of the entity
    tasks = [
        ApprovalTask(
            document=document,
            sequence=i,
            approver_code=s.approver,
            approver_name=s.name,
            delegated_from=s.delegated_from,
            reason=s.reason[:200],
            state=ApprovalTask.State.REQUESTED if i == 1 else ApprovalTask.State.PENDING,
            correlation_key=f"{document.posting_key}:approve:{i}:{s.approver}",
            due_at=due if i == 1 else None,
        )
        for i, s in enumerate(steps, start=1)
    ]
    ApprovalTask.objects.bulk_create(tasks)
    chain = " → ".join(
        f"{s.name} ({s.approver}{', for ' + s.delegated_from if s.delegated_from else ''})" for s in steps
    )
    document_event_add(document=document, system="workbench", action="routed", message=f"Routed for approval: {chain}")
    return list(document.approval_tasks.filter(correlation_key__startswith=f"{document.posting_key}:"))


def _sla_hours(document: Document) -> int:
    lines = list(document.lines.all())
    rule = _rule_for(document, {ln.category for ln in lines if ln.category})
    return rule.sla_hours if rule else 48


@dataclass
class DecisionOutcome:
    task: ApprovalTask
    applied: bool
    next_task: ApprovalTask | None = None
    requisition_decided: str = ""  # "", "approved", "rejected"


@transaction.atomic
def approval_decision_apply(*, task: ApprovalTask, state: str, comments: str, approver: str = "") -> DecisionOutcome:
    """Record one decision from the approval engine; move the chain on, or finish it."""
    doc = task.document
    # Only the step whose turn it is: a later step decided early must not approve the requisition.
    if task.state != ApprovalTask.State.REQUESTED or state not in ("approved", "rejected"):
        return DecisionOutcome(task, False)
    if approver and approver == doc.requester_code:
        exception_item_raise(
            code="SOD_VIOLATION",
            fp=f"SOD_VIOLATION:task{task.pk}",
            document=doc,
            message=f"{approver} decided on their own requisition {doc.number}; the decision was not counted.",
            root_cause=approver,
        )
        return DecisionOutcome(task, False)
    now = timezone.now()
    if not ApprovalTask.objects.filter(pk=task.pk, state=task.state).update(
        state=state, decided_at=now, comments=comments[:2000]
    ):
        return DecisionOutcome(task, False)
    task.state = state
    document_event_add(
        document=doc,
        system="approvals",
        action=f"approval_{state}",
        message=f"Step {task.sequence}: {task.approver_name or task.approver_code} {state}"
        + (f": {comments}" if comments else ""),
    )
    if state == "rejected":
        ApprovalTask.objects.filter(document=doc, state=ApprovalTask.State.PENDING).update(
            state=ApprovalTask.State.CANCELLED
        )
        Document.objects.filter(pk=doc.pk).update(business_status=Document.BusinessStatus.REJECTED, updated_at=now)
        doc.business_status = Document.BusinessStatus.REJECTED
        return DecisionOutcome(task, True, requisition_decided="rejected")
    nxt = doc.approval_tasks.filter(state=ApprovalTask.State.PENDING).order_by("sequence").first()
    if nxt is not None:
        ApprovalTask.objects.filter(pk=nxt.pk).update(
            state=ApprovalTask.State.REQUESTED, due_at=Calendars().sla_due(doc.entity_id, _sla_hours(doc), now)
        )
        nxt.refresh_from_db()
        return DecisionOutcome(task, True, next_task=nxt)
    Document.objects.filter(pk=doc.pk).update(
        business_status=Document.BusinessStatus.APPROVED, approved_at=now, updated_at=now
    )
    doc.business_status = Document.BusinessStatus.APPROVED
    doc.approved_at = now
    document_event_add(document=doc, system="workbench", action="approved", message="All approvers approved")
    return DecisionOutcome(task, True, requisition_decided="approved")


def overdue_tasks():
    return ApprovalTask.objects.filter(state=ApprovalTask.State.REQUESTED, due_at__lt=timezone.now()).select_related(
        "document"
    )


# --- the workflow ---------------------------------------------------------------------------------------


def requisition_send_for_approval(doc: Document) -> None:
    """Route a valid requisition and send its first approval task to the approval engine."""
    for task in requisition_route(document=doc):
        if task.state == ApprovalTask.State.REQUESTED and not task.external_id:
            approval_task_enqueue(task)


def approval_decisions_apply(records: list[dict]) -> int:
    """Decisions from the approval engine (its table, pulled, or pushed to our API): each one counts
    only for the step whose turn it is. Returns how many were applied."""
    keys = [r.get("correlation_key") for r in records if r.get("correlation_key")]
    tasks = {
        t.correlation_key: t for t in ApprovalTask.objects.filter(correlation_key__in=keys).select_related("document")
    }
    n = 0
    for rec in records:
        task = tasks.get(rec.get("correlation_key") or "")
        if task is None or rec.get("state") not in ("approved", "rejected"):
            continue
        comments, approver = str(rec.get("comments") or ""), str(rec.get("approver") or "")
        try:
            with transaction.atomic():
                if ":variance:" in task.correlation_key:
                    decided = task.state == ApprovalTask.State.REQUESTED and variance_decision(
                        task=task, state=rec["state"], comments=comments, approver=approver
                    )
                    n += 1 if decided else 0
                    continue
                outcome = approval_decision_apply(task=task, state=rec["state"], comments=comments, approver=approver)
                if not outcome.applied:
                    continue
                n += 1
                if outcome.next_task is not None:
                    approval_task_enqueue(outcome.next_task)
                if outcome.requisition_decided:
                    requisition_decision_enqueue(
                        task.document, outcome.requisition_decided, comments, task.approver_code
                    )
        except WorkbenchError as exc:
            # One decision that cannot apply must not hold back the others (nor the cursor).
            log.warning("approval decision for %s not applied: %s", task.correlation_key, exc)
    return n


def variance_decision(*, task: ApprovalTask, state: str, comments: str, approver: str) -> bool:
    """An approver decided on a routed invoice variance: approval accepts it, rejection hands it back."""
    item_id = int(task.correlation_key.split(":variance:")[1].split(":")[0])
    item = ExceptionItem.objects.filter(pk=item_id).first()
    if item is None or not item.is_active:
        return False
    if approver and approver in supplier_changed_by(task.document):
        exception_item_raise(
            code="SOD_VIOLATION",
            fp=f"SOD_VIOLATION:task{task.pk}",
            document=task.document,
            message=f"{approver} changed supplier {task.document.party_code} and approved its invoice; "
            "the decision was not counted.",
            root_cause=approver,
        )
        return False
    ApprovalTask.objects.filter(pk=task.pk).update(state=state, comments=comments[:2000])
    if item.status == Status.WAITING:  # re-validation may have reopened it meanwhile
        exception_item_transition(
            item=item,
            to=Status.OPEN,
            action="approver_decided",
            reason=f"{state.capitalize()} by {approver}" + (f": {comments}" if comments else ""),
        )
        item.refresh_from_db()
    if state == "approved":
        exception_item_override(
            item=item, reason=f"Approved by {approver}" + (f": {comments}" if comments else ""), actor=system_user()
        )
    return True


def approvals_escalate_overdue() -> int:
    """Approvals past their SLA raise APPROVAL_OVERDUE and go to the approver's manager as well."""
    n = 0
    for task in overdue_tasks():
        doc = task.document
        manager = _escalation_target(task)
        exception_item_raise(
            code="APPROVAL_OVERDUE",
            fp=f"APPROVAL_OVERDUE:task{task.pk}",
            document=doc,
            message=f"{task.approver_name or task.approver_code} has not decided on requisition {doc.number} since "
            f"{task.due_at:%Y-%m-%d %H:%M} UTC"
            + (f"; escalated to {manager}." if manager else "; nobody to escalate to."),
            root_cause=task.approver_code,
        )
        with transaction.atomic():
            if (
                manager
                and manager != doc.requester_code
                and not doc.approval_tasks.filter(approver_code=manager, escalated_from=task.approver_code).exists()
            ):
                ApprovalTask.objects.filter(pk=task.pk).update(
                    state=ApprovalTask.State.CANCELLED, comments="Escalated after the SLA passed"
                )
                approval_cancel_enqueue(task, "Escalated")
                new = ApprovalTask.objects.create(
                    document=doc,
                    sequence=task.sequence,
                    approver_code=manager,
                    escalated_from=task.approver_code,
                    reason=f"escalated from {task.approver_code}",
                    state=ApprovalTask.State.REQUESTED,
                    correlation_key=f"{task.correlation_key}:esc:{manager}",
                    due_at=timezone.now() + (task.due_at - task.created_at),
                )
                approval_task_enqueue(new)
                n += 1
    return n


def _escalation_target(task: ApprovalTask) -> str:
    """The approver's manager, or the next one up, who is neither the requester nor already in the chain."""
    doc = task.document
    taken = set(doc.approval_tasks.exclude(state=ApprovalTask.State.CANCELLED).values_list("approver_code", flat=True))
    person = task.approver_code
    for _ in range(6):
        person = Employee.objects.filter(code=person).values_list("manager_code", flat=True).first() or ""
        if not person:
            return ""
        if person != doc.requester_code and person not in taken:
            return person
    return ""
