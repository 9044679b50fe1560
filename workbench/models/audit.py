"""The document trace: an append-only history of everything that happened to a document."""

from django.conf import settings
from django.db import models


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("history rows are append-only")

    def delete(self):
        raise TypeError("history rows are append-only")


class DocumentEvent(models.Model):
    document = models.ForeignKey("workbench.Document", related_name="events", on_delete=models.CASCADE)
    at = models.DateTimeField(db_index=True)
    system = models.CharField(max_length=30, help_text="Where it happened: concur, workbench, business_central")
    action = models.CharField(max_length=40)
    message = models.TextField(blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    correlation_id = models.UUIDField()
    data = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.system} {self.action}"

    def save(self, *args, **kwargs):
        # Guard, not logic: an event once written is never rewritten.
        if self.pk:
            raise TypeError("history rows are append-only")
        super().save(*args, **kwargs)
