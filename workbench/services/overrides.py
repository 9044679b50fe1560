"""Override governance: which codes may be overridden, by whom, up to what amount alone.

An override is always an `OverrideRequest` with a reason code and text. Within policy it is applied
at once; above the policy's amount (or when the amount's currency is not the entity's, so it
cannot be compared without a rate) it waits for a finance manager who is not the one asking.
The item page and the server both read `override_policy()`: what the page offers is what the
server allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from workbench import roles
from workbench.errors import InvalidTransition, WorkbenchError
from workbench.models import ExceptionEvent, ExceptionItem, OverridePolicy, OverrideReason, OverrideRequest
from workbench.models.exceptions import Status
from workbench.services.exception_items import exception_item_transition
from workbench.services.item_actions import exception_item_override

ROLE_PERMISSION = {
    OverridePolicy.Role.ANALYST: roles.WORK_BUSINESS,
    OverridePolicy.Role.ENGINEER: roles.WORK_TECHNICAL,
    OverridePolicy.Role.MANAGER: roles.APPROVE,
}

_ANALYST_ALONE_UP_TO = Decimal("10000.00")
MAX_TEXT = 4000  # characters of a reason or a decision note: refused beyond, never cut
# Codes an admin has not set a policy for. Not listed: not overridable (fail closed).
DEFAULT_POLICIES: dict[str, tuple[str, Decimal | None]] = {
    code: (OverridePolicy.Role.ANALYST, _ANALYST_ALONE_UP_TO)
    for code in (
        "MISSING_COST_CENTER",
        "UNKNOWN_COST_CENTER",
        "INVALID_TAX_CODE",
        "CLOSED_PERIOD",
        "INACTIVE_EMPLOYEE",
        "NO_CONTRACT",
        "NOT_RECEIVED",
        "NO_PURCHASE_ORDER",
    )
}
DEFAULT_POLICIES.update(
    {
        "BUDGET_EXCEEDED": (OverridePolicy.Role.ANALYST, Decimal(0)),  # always a second person
        "DUPLICATE_INVOICE": (OverridePolicy.Role.ANALYST, Decimal(0)),
        "MALFORMED_RECORD": (OverridePolicy.Role.ENGINEER, None),
        "INVALID_EINVOICE": (OverridePolicy.Role.ENGINEER, None),
    }
)
WHY_NOT = {
    "BLOCKED_SUPPLIER": "The supplier is blocked in the ERP: unblock it there (or choose another supplier).",
    "OWNERSHIP_CONFLICT": "Ownership conflicts are decided on the master-data screen by an administrator.",
    "PRICE_VARIANCE": "Accept the variance (within your authority) or route it to an approver.",
    "QUANTITY_VARIANCE": "Accept the variance (within your authority) or route it to an approver.",
    "SOD_VIOLATION": "A segregation-of-duties breach cannot be waved through; another approver must decide.",
}
DEFAULT_REASONS = [
    ("BUSINESS_OK", "Confirmed correct with the business owner"),
    ("ERP_FIXED", "Corrected directly in the ERP"),
    ("ONE_OFF", "One-off exception approved by policy"),
    ("FALSE_POSITIVE", "The rule fired in error"),
]


def _note(text: str) -> str:
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise WorkbenchError(f"Keep it to {MAX_TEXT:,} characters ({len(text):,} given); attach a file as evidence.")
    return text


@dataclass(frozen=True)
class Policy:
    code: str
    overridable: bool
    role: str
    approval_above: Decimal | None

    @property
    def permission(self) -> str:
        return ROLE_PERMISSION[self.role]


def override_policy(code: str) -> Policy:
    row = OverridePolicy.objects.filter(code=code).first()
    if row is not None:
        return Policy(code, row.overridable, row.role, row.approval_above)
    if code in DEFAULT_POLICIES:
        role, above = DEFAULT_POLICIES[code]
        return Policy(code, True, role, above)
    return Policy(code, False, OverridePolicy.Role.ANALYST, None)


def override_defaults() -> None:
    """The reason codes an admin starts from (only when there are none)."""
    if not OverrideReason.objects.exists():
        OverrideReason.objects.bulk_create([OverrideReason(code=c, label=label) for c, label in DEFAULT_REASONS])


def may_request(user, item: ExceptionItem) -> str:
    """ "" when this person may ask to override this item; otherwise why not, in words for the page."""
    policy = override_policy(item.code)
    if not policy.overridable:
        return WHY_NOT.get(item.code, f"{item.code} cannot be overridden: fix the cause, retry, or send it back.")
    if not item.is_active:
        return "This item is no longer open."
    if not (user.has_perm(policy.permission) or user.has_perm(roles.APPROVE)):
        return f"Overriding {item.code} is for the {OverridePolicy.Role(policy.role).label.lower()} role."
    return ""


def needs_second_person(item: ExceptionItem, policy: Policy) -> bool:
    if policy.approval_above is None:
        return False
    entity_currency = item.entity.currency if item.entity_id else ""
    if item.currency != entity_currency:
        return True  # not comparable without a rate: a person decides
    return abs(item.amount_at_risk) > policy.approval_above


@transaction.atomic
def override_request(*, item: ExceptionItem, actor, reason_code: str, text: str) -> OverrideRequest:
    """Ask to override; applied now within policy, else waiting for a finance manager."""
    item = ExceptionItem.objects.select_for_update(of=("self",)).select_related("entity", "document").get(pk=item.pk)
    why_not = may_request(actor, item)
    if why_not:
        raise InvalidTransition(why_not)
    reason = OverrideReason.objects.filter(code=reason_code, active=True).first()
    if reason is None:
        raise WorkbenchError("Choose a reason code from the list.")
    text = _note(text)
    if not text:
        raise WorkbenchError("Say in a sentence why this is acceptable.")
    policy = override_policy(item.code)
    wait = needs_second_person(item, policy)
    req = OverrideRequest(
        item=item,
        code=item.code,
        entity_code=item.entity.code if item.entity_id else "",
        amount=item.amount_at_risk,
        currency=item.currency,
        reason=reason,
        text=text,
        requested_by=actor,
        state=OverrideRequest.State.PENDING if wait else OverrideRequest.State.APPLIED,
    )
    try:
        with transaction.atomic():
            req.save()
    except IntegrityError as exc:
        raise InvalidTransition("An override of this item is already waiting for approval.") from exc
    if wait:
        if item.status != Status.WAITING:
            exception_item_transition(
                item=item,
                to=Status.WAITING,
                actor=actor,
                action="override_requested",
                reason=f"{reason.code}: {text} (waiting for a finance manager's approval)",
            )
        return req
    exception_item_override(item=item, reason=f"{reason.code}: {text}", actor=actor)
    return req


@transaction.atomic
def override_decide(*, request_id: int, approver, approve: bool, text: str) -> OverrideRequest:
    req = OverrideRequest.objects.select_for_update(of=("self",)).select_related("item", "reason").get(pk=request_id)
    if req.state != OverrideRequest.State.PENDING:
        raise InvalidTransition("This override was already decided.")
    if not approver.has_perm(roles.APPROVE):
        raise InvalidTransition("Only a finance manager approves overrides.")
    if approver.pk == req.requested_by_id:
        raise InvalidTransition("A second person must approve: you asked for this override yourself.")
    text = _note(text)
    if not approve and not text:
        raise WorkbenchError("Say why the override is refused.")
    req.state = OverrideRequest.State.APPROVED if approve else OverrideRequest.State.REFUSED
    req.decided_by, req.decided_at, req.decision_text = approver, timezone.now(), text
    req.save(update_fields=["state", "decided_by", "decided_at", "decision_text"])
    item = req.item
    if approve:
        if item.status == Status.WAITING:
            exception_item_transition(item=item, to=Status.OPEN, actor=approver, action="override_approved")
            item.refresh_from_db()
        exception_item_override(
            item=item,
            reason=f"{req.reason.code}: {req.text} (asked by {req.requested_by.get_username()}, "
            f"approved by {approver.get_username()}" + (f": {text})" if text else ")"),
            actor=approver,
        )
    else:
        if item.status == Status.WAITING:
            exception_item_transition(item=item, to=Status.OPEN, actor=approver, action="override_refused", reason=text)
        else:
            ExceptionEvent.objects.create(
                item=item,
                action="override_refused",
                from_status=item.status,
                to_status=item.status,
                actor=approver,
                reason=text,
                correlation_id=item.correlation_id,
            )
    return req
