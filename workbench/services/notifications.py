"""Tell people something: the one way anything writes to a person's inbox.

E-mail (immediate or in the daily digest) and chat webhooks deliver what is written here; they
never invent messages of their own, so the inbox is the record of who was told what.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from workbench.models import Notification


def notifications_send(
    *,
    recipients: Iterable,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    item=None,
    document=None,
    key: str = "",
) -> list[Notification]:
    """Write one inbox message per active recipient (users or user ids); with a `key`, a recipient
    who already got that key gets nothing new. Returns the messages written now."""
    ids = {getattr(r, "pk", r) for r in recipients if r is not None}
    users = list(get_user_model().objects.filter(pk__in=ids, is_active=True).values_list("pk", flat=True))
    if key:
        told = set(Notification.objects.filter(key=key, recipient_id__in=users).values_list("recipient_id", flat=True))
        users = [u for u in users if u not in told]
    now = timezone.now()
    rows = [
        Notification(
            recipient_id=u,
            kind=kind,
            title=title.replace("\x00", "")[:300],
            body=body.replace("\x00", ""),
            url=url[:500],
            item=item,
            document=document,
            key=key[:200],
            created_at=now,
        )
        for u in sorted(users)
    ]
    with transaction.atomic():
        # ignore_conflicts: two workers evaluating the same alert at once still tell each person once.
        Notification.objects.bulk_create(rows, ignore_conflicts=bool(key))
    return rows


def notifications_mark_read(*, user, ids: Iterable[int] | None = None) -> int:
    """Mark the user's messages read (all unread ones when `ids` is None); another's are untouched."""
    qs = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=timezone.now())
