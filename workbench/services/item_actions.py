"""What an analyst does to an exception item: assign, override, retry, send back.

One floor above the state machine (`exception_items.py`): these actions also reach the outbox
(`postings.py`) and ask the worker for re-validation, a replay or a connection check
(`workbench.jobs`).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from workbench import jobs
from workbench.errors import InvalidTransition
from workbench.models import ExceptionEvent, ExceptionItem, Watch
from workbench.models.exceptions import Status
from workbench.rules import RULES
from workbench.services.exception_items import exception_item_transition
from workbench.services.postings import send_back_enqueue
from workbench.services.trace import document_event_add
from workbench.services.watchers import watchers_note, watches_add


@transaction.atomic
def exception_item_assign(*, item: ExceptionItem, assignee, actor) -> ExceptionItem:
    if not item.is_active:
        raise InvalidTransition("Only open items can be assigned.")
    ExceptionItem.objects.filter(pk=item.pk).update(assignee=assignee, updated_at=timezone.now())
    who = assignee.get_username() if assignee else "nobody"
    event = ExceptionEvent.objects.create(
        item=item,
        action="assigned",
        from_status=item.status,
        to_status=item.status,
        actor=actor,
        reason=f"Assigned to {who}",
        correlation_id=item.correlation_id,
    )
    item.assignee = assignee
    # Who assigns and who is assigned follow the item from now on (and the assignee is told).
    watches_add(users=[actor, assignee], reason=Watch.Reason.ASSIGNED, item=item)
    watchers_note(event, item)
    if item.status == Status.OPEN and assignee is not None:
        exception_item_transition(item=item, to=Status.IN_PROGRESS, actor=actor, action="taken")
    return item


@transaction.atomic
def exception_item_override(*, item: ExceptionItem, reason: str, actor) -> ExceptionItem:
    """Accept the document despite the finding; the document goes on to posting if nothing else blocks."""
    if item.code not in RULES and item.code not in ("MALFORMED_RECORD", "INVALID_EINVOICE", "OWNERSHIP_CONFLICT"):
        raise InvalidTransition(
            f"{item.code} cannot be overridden: the ERP or the connection decides it. "
            "Fix the cause, retry, or send the report back."
        )
    exception_item_transition(item=item, to=Status.OVERRIDDEN, actor=actor, reason=reason, action="overridden")
    if item.document_id:
        document_event_add(
            document=item.document,
            system="workbench",
            action="override",
            message=f"{item.code} overridden: {reason}",
            actor=actor,
        )
        jobs.enqueue_on_commit(jobs.REVALIDATE_DOCUMENT, document_id=item.document_id, actor_id=actor.pk, repost=True)
    return item


@transaction.atomic
def exception_item_retry(*, item: ExceptionItem, actor) -> ExceptionItem:
    """Try again: re-validate and re-post the document, or replay a dead write, or re-check a connection."""
    if not item.is_active:
        raise InvalidTransition("Only open items can be retried.")
    if item.detail.get("accrual_journal_id"):
        # Posting an accrual is a finance manager's decision, made on the accruals screen.
        raise InvalidTransition("A finance manager posts this accrual again from the accruals screen.")
    if item.status == Status.WAITING:
        ExceptionEvent.objects.create(
            item=item,
            action="retry",
            from_status=item.status,
            to_status=item.status,
            actor=actor,
            reason="Retry requested again",
            correlation_id=item.correlation_id,
        )
    else:
        exception_item_transition(item=item, to=Status.WAITING, actor=actor, action="retry", reason="Retry requested")
    if item.code == "CONNECTOR_UNAVAILABLE" and item.connection_id:
        jobs.enqueue_on_commit(jobs.CHECK_CONNECTION, connection_id=item.connection_id)
    elif item.code == "POSTING_FAILED" and item.detail.get("write_id"):
        jobs.enqueue_on_commit(jobs.REPLAY_WRITE, write_id=item.detail["write_id"], actor_id=actor.pk)
    elif item.document_id:
        jobs.enqueue_on_commit(jobs.REVALIDATE_DOCUMENT, document_id=item.document_id, actor_id=actor.pk, repost=True)
    return item


@transaction.atomic
def exception_item_send_back(*, item: ExceptionItem, reason: str, actor) -> ExceptionItem:
    """Return the document to its source with our words: the person who typed it fixes it there.

    The item waits until the source sends a new version (re-validation then resolves or reopens it).
    """
    if not item.is_active:
        raise InvalidTransition("Only open items can be sent back.")
    reason = reason.strip() or item.message
    if item.status != Status.WAITING:
        exception_item_transition(item=item, to=Status.WAITING, actor=actor, action="sent_back", reason=reason)
    if not send_back_enqueue(item, reason):
        raise InvalidTransition("This item's source system is not connected; it cannot be sent back.")
    if item.document_id:
        document_event_add(
            document=item.document,
            system="workbench",
            action="sent_back",
            message=f"Sent back to {item.document.source_system}: {reason}",
            actor=actor,
        )
    return item
