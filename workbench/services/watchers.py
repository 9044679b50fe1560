"""Watching an item or a document: who is told when it changes status, is assigned or gets a comment.

People watch by choice, and automatically when they comment, assign or are assigned. The state
machine calls `watchers_note` for every event it writes; the events of one transaction are looked
at together once it commits, so a bulk ingest that changes thousands of items costs one query when
nobody watches them (and rolls back with nothing told).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.db import transaction
from django.db.models import Q
from django.urls import reverse

from workbench.models import Document, ExceptionEvent, ExceptionItem, Watch
from workbench.selectors.discussion import people_who_see
from workbench.services.notifications import notifications_send

log = logging.getLogger(__name__)

# What a watcher hears about: status changes (any event whose status moved) and assignments.
# Comments tell watchers from `services/comments.py`, with the comment's words.
TOLD_ACTIONS = {"assigned"}


def watch_set(*, user, item: ExceptionItem | None = None, document: Document | None = None, on: bool = True) -> bool:
    """Watch (or stop watching) one item or document; returns whether the person now watches it."""
    target = {"item": item} if item is not None else {"document": document}
    if on:
        Watch.objects.get_or_create(user=user, **target, defaults={"reason": Watch.Reason.CHOSEN})
    else:
        Watch.objects.filter(user=user, **target).delete()
    return on


def watches_add(*, users, reason: str, item: ExceptionItem | None = None, document: Document | None = None) -> None:
    """Start watching for people who did something to the object; those who watch already keep their row."""
    target = {"item": item} if item is not None else {"document": document}
    rows = [
        Watch(user_id=getattr(u, "pk", u), reason=reason, **target) for u in {getattr(u, "pk", u) for u in users if u}
    ]
    Watch.objects.bulk_create(rows, ignore_conflicts=True)


def is_watching(user, *, item=None, document=None) -> bool:
    qs = Watch.objects.filter(user=user)
    return (qs.filter(item=item) if item is not None else qs.filter(document=document)).exists()


# --- the hook the state machine calls ------------------------------------------------------------


class _Batch:
    """The item events of one transaction, looked at once it commits."""

    def __init__(self):
        self.events: list[tuple[int, int, int | None]] = []  # (event id, item id, document id)
        self.done = False

    def __call__(self) -> None:
        self.done = True  # events noted after this (tests run callbacks before the end) start a new batch
        watchers_tell(self.events)


def watchers_note(event: ExceptionEvent, item: ExceptionItem) -> None:
    """Remember an item event for its watchers: told after commit, if it changed the status or the assignee."""
    watchers_note_many([event], {item.pk: item})


def watchers_note_many(events: list[ExceptionEvent], items: dict[int, ExceptionItem]) -> None:
    """The same for many events at once (items raised in bulk: their document's watchers hear of them)."""
    entries = [
        (e.pk, e.item_id, getattr(items.get(e.item_id), "document_id", None))
        for e in events
        if e.pk is not None and (e.from_status != e.to_status or e.action in TOLD_ACTIONS)
    ]
    if not entries:
        return
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        watchers_tell(entries)
        return
    for _, callback, _robust in conn.run_on_commit:
        if isinstance(callback, _Batch) and not callback.done:
            callback.events.extend(entries)
            return
    batch = _Batch()
    batch.events.extend(entries)
    # robust: the change is committed; a failure to tell watchers is logged, never the caller's error.
    transaction.on_commit(batch, robust=True)


def watchers_tell(entries: list[tuple[int, int, int | None]]) -> int:
    """Tell the watchers of these items (and of their documents) what happened; one query when nobody watches."""
    if not entries:
        return 0
    item_ids = {i for _, i, _ in entries}
    doc_ids = {d for _, _, d in entries if d}
    watches = list(
        Watch.objects.filter(Q(item_id__in=item_ids) | Q(document_id__in=doc_ids)).values_list(
            "user_id", "item_id", "document_id"
        )
    )
    if not watches:
        return 0
    by_item: dict[int, set[int]] = defaultdict(set)
    by_doc: dict[int, set[int]] = defaultdict(set)
    for user_id, item_id, doc_id in watches:
        (by_item[item_id] if item_id else by_doc[doc_id]).add(user_id)
    events = defaultdict(list)
    # Read back: an event rolled back with its savepoint is not there to tell.
    for e in ExceptionEvent.objects.filter(pk__in=[e for e, _, _ in entries]).select_related("actor").order_by("id"):
        events[e.item_id].append(e)
    items = ExceptionItem.objects.select_related("document").in_bulk([i for i in events])
    told = 0
    for item_id, evs in events.items():
        item = items[item_id]
        who = (by_item.get(item_id, set()) | by_doc.get(item.document_id, set())) - {e.actor_id for e in evs}
        if not who:
            continue
        recipients = people_who_see(entity_id=item.entity_id, among=Q(pk__in=who))
        notifications_send(
            recipients=recipients,
            kind="watch",
            title=f"{item.code} #{item.pk}: " + "; ".join(_what(e) for e in evs),
            body="\n".join(f"{_by(e)}{e.reason}" for e in evs if e.reason)[:2000],
            url=reverse("items:detail", args=[item.pk]),
            item=item,
            document=item.document,
            key=f"watch:{item_id}:{evs[-1].pk}",
            email=True,
        )
        told += len(who)
    return told


def _what(e: ExceptionEvent) -> str:
    if e.action == "raised":
        return "raised"
    if e.action == "assigned":
        return e.reason.lower() if e.reason else "assigned"
    return f"{e.from_status or 'new'} → {e.to_status}".replace("_", " ")


def _by(e: ExceptionEvent) -> str:
    return f"{e.actor.get_username()}: " if e.actor_id else ""
