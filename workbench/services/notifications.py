"""Tell people something: the one way anything writes to a person's inbox.

E-mail (immediate or in the daily digest) and chat webhooks deliver what is written here; they
never invent messages of their own, so the inbox is the record of who was told what.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from workbench.models import Notification

log = logging.getLogger(__name__)


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
    email: bool = False,
) -> list[Notification]:
    """Write one inbox message per active recipient (users or user ids); with a `key`, a recipient
    who already got that key gets nothing new. With `email`, each new message is also mailed once
    the transaction commits. Returns the messages written now."""
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
        if email and rows:
            transaction.on_commit(lambda: notifications_email(title=title, key=key, recipients=users, at=now))
    return rows


def notifications_email(*, title: str, key: str, recipients: list[int], at) -> int:
    """Mail the messages just written (found again by recipient, title and time); each is mailed at most once."""
    qs = (
        Notification.objects.filter(recipient_id__in=recipients, created_at=at, emailed_at__isnull=True, key=key[:200])
        # A person who chose the daily digest gets it there (services/email_digest.py); "off", never.
        .exclude(recipient__notification_preference__email__in=["digest", "off"])
        .select_related("recipient")
    )
    sent = 0
    for n in qs:
        if not n.recipient.email or not Notification.objects.filter(pk=n.pk, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        ):
            continue  # no address, or another process mailed it
        try:
            send_mail(n.title, _mail_body(n), settings.DEFAULT_FROM_EMAIL, [n.recipient.email])
            sent += 1
        except Exception:  # noqa: BLE001 - the inbox has it; a mail server down must not break the caller
            log.exception("could not mail notification %s", n.pk)
    return sent


def _mail_body(n: Notification) -> str:
    link = f"\n\n{settings.PUBLIC_URL.rstrip('/')}{n.url}" if n.url else ""
    return f"{n.body}{link}"


def notifications_mark_read(*, user, ids: Iterable[int] | None = None) -> int:
    """Mark the user's messages read (all unread ones when `ids` is None); another's are untouched."""
    qs = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=timezone.now())
