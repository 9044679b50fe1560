"""Mail by each person's choice: every message as it arrives, one digest a day, or none.

The daily digest (beat entry "Inbox: daily e-mail digest", at DIGEST_HOUR) mails each person who
chose it the messages of the last day that no mail carried yet, in one mail. A message is claimed
(`emailed_at` set) before the mail is sent, so two runs never mail it twice; a mail that fails is
released again for the next run.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from workbench.errors import WorkbenchError
from workbench.models import Notification, NotificationPreference

log = logging.getLogger(__name__)

DIGEST_WINDOW = timedelta(days=1)
DIGEST_MAX = 200  # messages in one mail; the rest are in the inbox, which the mail links to


@transaction.atomic
def notification_preference_set(*, user, email: str) -> NotificationPreference:
    if email not in NotificationPreference.Email.values:
        raise WorkbenchError(
            "Choose how to be mailed: " + ", ".join(f'"{v}"' for v in NotificationPreference.Email.values) + "."
        )
    pref, _ = NotificationPreference.objects.update_or_create(
        user=user, defaults={"email": email, "updated_at": timezone.now()}
    )
    return pref


def notifications_digest_send(*, now=None) -> int:
    """One mail per digest person with messages of the last day not mailed yet; returns the mails sent."""
    now = now or timezone.now()
    since = now - DIGEST_WINDOW
    people = (
        get_user_model()
        .objects.filter(
            is_active=True,
            notification_preference__email=NotificationPreference.Email.DIGEST,
            notifications__emailed_at__isnull=True,
            notifications__created_at__gt=since,
            notifications__created_at__lte=now,
        )
        .exclude(email="")
        .distinct()
    )
    sent = 0
    for person in people:
        sent += _digest_one(person, since=since, now=now)
    return sent


def _digest_one(person, *, since, now) -> int:
    pending = Notification.objects.filter(
        recipient=person, emailed_at__isnull=True, created_at__gt=since, created_at__lte=now
    ).order_by("created_at", "id")
    ids = list(pending.values_list("pk", flat=True)[:DIGEST_MAX])
    stamp = timezone.now()
    # Claim first (compare-and-set): a second run at the same time finds nothing left to mail.
    if not ids or not Notification.objects.filter(pk__in=ids, emailed_at__isnull=True).update(emailed_at=stamp):
        return 0
    messages = list(Notification.objects.filter(pk__in=ids, emailed_at=stamp).order_by("created_at", "id"))
    if not messages:
        return 0
    try:
        send_mail(_subject(messages), _body(messages), settings.DEFAULT_FROM_EMAIL, [person.email])
    except Exception:  # noqa: BLE001 - released for the next run; the inbox has every message meanwhile
        log.exception("could not mail the digest to %s", person.pk)
        Notification.objects.filter(pk__in=[m.pk for m in messages], emailed_at=stamp).update(emailed_at=None)
        return 0
    return 1


def _subject(messages: list[Notification]) -> str:
    n = len(messages)
    return f"Workbench: {n} message{'s' if n != 1 else ''} in the last day"


def _body(messages: list[Notification]) -> str:
    base = settings.PUBLIC_URL.rstrip("/")
    parts = []
    for m in messages:
        lines = [f"{m.created_at:%Y-%m-%d %H:%M} UTC  {m.title}"]
        if m.body:
            lines.append("  " + m.body.replace("\n", "\n  ")[:1000])
        if m.url:
            lines.append(f"  {base}{m.url}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + f"\n\nYour inbox: {base}/inbox/\nChange how you are mailed: {base}/inbox/settings/\n"
