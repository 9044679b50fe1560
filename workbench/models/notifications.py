"""What the workbench tells a person: one row per message in their in-app inbox.

Everything that notifies (mentions, watched items, alerts, digests) writes rows here through
`services/notifications.py`; e-mail and chat are deliveries of these rows, so the inbox is the one
place where "who was told what, when" can be read back. A non-empty `key` makes a message unique
per recipient, so an alert that is evaluated twice still tells each person once.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Notification(models.Model):
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="notifications", on_delete=models.CASCADE)
    kind = models.CharField(max_length=40, help_text="mention, watch, alert, alert_resolved, digest, ...")
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    item = models.ForeignKey("workbench.ExceptionItem", null=True, blank=True, on_delete=models.SET_NULL)
    document = models.ForeignKey("workbench.Document", null=True, blank=True, on_delete=models.SET_NULL)
    key = models.CharField(max_length=200, blank=True, help_text="Deduplication key: one message per recipient")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "key"], condition=~models.Q(key=""), name="notification_once_per_key"
            )
        ]
        indexes = [models.Index(fields=["recipient", "read_at", "-created_at"], name="notification_inbox")]

    def __str__(self):
        return f"{self.recipient_id}: {self.title}"
