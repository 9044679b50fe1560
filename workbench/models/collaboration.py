"""Working together on an item or a document: comments, watchers, and how each person wants mail.

A comment is history: it is never edited in place (an edit is a new comment that `replaces` the
one before it), and like the other history tables it is copied into the audit chain. Watching is
a person's subscription, not history: it can be switched off and on again. Messages themselves are
`Notification` rows; the preference only says how (and whether) they are also mailed.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .audit import AppendOnlyModel

COMMENT_MAX = 10_000  # characters: a comment is a note, not a file (evidence is for files)

_ONE_OBJECT = (Q(item__isnull=False) & Q(document__isnull=True)) | (Q(item__isnull=True) & Q(document__isnull=False))


class Comment(AppendOnlyModel):
    item = models.ForeignKey(
        "workbench.ExceptionItem", null=True, blank=True, related_name="comments", on_delete=models.PROTECT
    )
    document = models.ForeignKey(
        "workbench.Document", null=True, blank=True, related_name="comments", on_delete=models.PROTECT
    )
    # Named `actor` like the other history rows, so the audit chain records who wrote it.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="comments", on_delete=models.PROTECT)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    body = models.TextField()
    replaces = models.ForeignKey("self", null=True, blank=True, related_name="edits", on_delete=models.PROTECT)
    mentioned = models.JSONField(default=list, blank=True, help_text="Usernames the @mentions resolved to")

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.CheckConstraint(condition=_ONE_OBJECT, name="comment_on_one_object")]

    def __str__(self):
        return f"{self.actor_id} at {self.at:%Y-%m-%d %H:%M}"


class Watch(models.Model):
    class Reason(models.TextChoices):
        CHOSEN = "chosen", "Chose to watch"
        COMMENTED = "commented", "Commented"
        ASSIGNED = "assigned", "Assigned"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="watches", on_delete=models.CASCADE)
    item = models.ForeignKey(
        "workbench.ExceptionItem", null=True, blank=True, related_name="watches", on_delete=models.CASCADE
    )
    document = models.ForeignKey(
        "workbench.Document", null=True, blank=True, related_name="watches", on_delete=models.CASCADE
    )
    reason = models.CharField(max_length=12, choices=Reason.choices, default=Reason.CHOSEN)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=_ONE_OBJECT, name="watch_on_one_object"),
            models.UniqueConstraint(fields=["user", "item"], condition=Q(item__isnull=False), name="watch_item_once"),
            models.UniqueConstraint(
                fields=["user", "document"], condition=Q(document__isnull=False), name="watch_document_once"
            ),
        ]

    def __str__(self):
        return f"{self.user_id} watches {'item ' + str(self.item_id) if self.item_id else 'document ' + str(self.document_id)}"


class NotificationPreference(models.Model):
    """How a person's inbox messages are mailed; without a row, each is mailed as it arrives."""

    class Email(models.TextChoices):
        IMMEDIATELY = "immediately", "Immediately, one mail per message"
        DIGEST = "digest", "Once a day, in a digest"
        OFF = "off", "Never: the inbox is enough"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, related_name="notification_preference", on_delete=models.CASCADE
    )
    email = models.CharField(max_length=12, choices=Email.choices, default=Email.IMMEDIATELY)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(email__in=["immediately", "digest", "off"]), name="notification_preference_email_valid"
            )
        ]

    def __str__(self):
        return f"{self.user_id}: {self.email}"
