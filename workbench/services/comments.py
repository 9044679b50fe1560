"""Comments on exception items and documents, with @mentions.

A comment is never changed: editing posts a new comment that replaces the old one in the thread
(the old words stay in the history and the audit chain). `@username` tells that person, if they
are active and may see the object (role and entity scope); any other `@word` stays plain text, so
a mention cannot reveal an item to someone outside its entities.
"""

from __future__ import annotations

import operator
import re
from functools import reduce

from django.db import transaction
from django.db.models import Q
from django.urls import reverse

from workbench.errors import InvalidComment
from workbench.models import Comment, Document, ExceptionEvent, ExceptionItem, Watch
from workbench.models.collaboration import COMMENT_MAX
from workbench.selectors.discussion import entity_of, people_who_see
from workbench.services.notifications import notifications_send
from workbench.services.trace import document_event_add
from workbench.services.watchers import watches_add

# Django usernames allow letters, digits and @.+-_; a trailing "." or "@" is the sentence's, not the name's.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]*[\w+-])")
SNIPPET = 280


def mentioned_names(body: str) -> list[str]:
    seen: dict[str, None] = {}
    for m in MENTION.finditer(body):
        seen.setdefault(m.group(1), None)
    return list(seen)[:50]  # a wall of mentions is not a way to reach the whole company


def comment_check(body) -> str:
    """The body as it will be stored, or InvalidComment saying what is wrong with it."""
    if not isinstance(body, str):
        raise InvalidComment("A comment is text.")
    if "\x00" in body:
        raise InvalidComment("A comment cannot contain a NUL byte (\\0); remove it and post again.")
    body = body.strip()
    if not body:
        raise InvalidComment("Write something before posting a comment.")
    if len(body) > COMMENT_MAX:
        raise InvalidComment(f"A comment is at most {COMMENT_MAX:,} characters; this one has {len(body):,}.")
    return body


def _label(item, document) -> str:
    if item is not None:
        return f"{item.code} #{item.pk}"
    return f"{document.get_kind_display().lower()} {document.number or document.source_id or document.pk}"


def _url(item, document) -> str:
    return (
        reverse("items:detail", args=[item.pk]) if item is not None else reverse("documents:detail", args=[document.pk])
    )


@transaction.atomic
def comment_add(
    *,
    actor,
    body,
    item: ExceptionItem | None = None,
    document: Document | None = None,
    replaces: Comment | None = None,
) -> Comment:
    """Post a comment (or a new version of one's own comment); mentioned people and watchers are told."""
    if (item is None) == (document is None):
        raise InvalidComment("A comment belongs to one item or one document.")
    body = comment_check(body)
    if replaces is not None:
        same_object = replaces.item_id == getattr(item, "pk", None) and replaces.document_id == getattr(
            document, "pk", None
        )
        if not same_object or replaces.actor_id != actor.pk:
            raise InvalidComment("Only its author can edit a comment, on the same item or document.")
        if Comment.objects.filter(replaces=replaces).exists():
            raise InvalidComment("This comment was edited already; edit its latest version.")
    names = mentioned_names(body)
    entity_id = entity_of(item=item, document=document)
    # "@Ben" finds ben: people type names as they say them.
    named = reduce(operator.or_, (Q(username__iexact=n) for n in names), Q(pk__in=[]))
    mentioned = list(people_who_see(entity_id=entity_id, among=named)) if names else []
    comment = Comment.objects.create(
        item=item,
        document=document,
        actor=actor,
        body=body,
        replaces=replaces,
        mentioned=sorted(u.get_username() for u in mentioned),
    )
    snippet = body if len(body) <= SNIPPET else body[: SNIPPET - 1] + "…"
    if item is not None:
        ExceptionEvent.objects.create(
            item=item,
            action="comment_edited" if replaces else "commented",
            from_status=item.status,
            to_status=item.status,
            actor=actor,
            reason=snippet,
            correlation_id=item.correlation_id,
        )
    else:
        document_event_add(
            document=document,
            system="workbench",
            action="comment_edited" if replaces else "commented",
            message=snippet,
            actor=actor,
        )
    watches_add(users=[actor], reason=Watch.Reason.COMMENTED, item=item, document=document)
    label, url, who = _label(item, document), _url(item, document), actor.get_username()
    told = {actor.pk}
    # An edit tells only the people it mentions for the first time; watchers heard of the comment already.
    before = set(replaces.mentioned) if replaces is not None else set()
    mention_ids = {u.pk for u in mentioned if u.get_username() not in before} - told
    if mention_ids:
        notifications_send(
            recipients=mention_ids,
            kind="mention",
            title=f"{who} mentioned you on {label}",
            body=snippet,
            url=url,
            item=item,
            document=document if document is not None else getattr(item, "document", None),
            key=f"mention:{comment.pk}",
            email=True,
        )
    told |= mention_ids
    if replaces is None:
        _tell_watchers(
            comment, item=item, document=document, skip=told, title=f"{who} commented on {label}", body=snippet
        )
    return comment


def _tell_watchers(comment, *, item, document, skip: set[int], title: str, body: str) -> None:
    watching = Q(item=item) if item is not None else Q(document=document)
    if item is not None and item.document_id:
        watching |= Q(document_id=item.document_id)
    ids = set(Watch.objects.filter(watching).values_list("user_id", flat=True)) - skip
    if not ids:
        return
    notifications_send(
        recipients=people_who_see(entity_id=entity_of(item=item, document=document), among=Q(pk__in=ids)),
        kind="comment",
        title=title,
        body=body,
        url=_url(item, document),
        item=item,
        document=document if document is not None else getattr(item, "document", None),
        key=f"comment:{comment.pk}",
        email=True,
    )
