"""Bulk work: what one bulk action (a WorkJob of kind "bulk") did to each item it was given.

One row per (job, item), written in the same transaction as the item's own change, so a job that
runs again after a crash, or is delivered twice, never acts on an item twice; the rows are also the
summary the person reads at the end (changed, waiting for a second person, skipped and why).
"""

from django.db import models
from django.utils import timezone


class BulkOutcome(models.Model):
    class Outcome(models.TextChoices):
        CHANGED = "changed", "Changed"
        REQUESTED = "requested", "Waits for a second person"
        SKIPPED = "skipped", "Skipped"

    job = models.ForeignKey("workbench.WorkJob", on_delete=models.CASCADE, related_name="bulk_outcomes")
    item = models.ForeignKey("workbench.ExceptionItem", on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=300, blank=True, help_text="Why it was skipped, in the person's words")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "item"], name="bulk_outcome_once_per_item"),
            models.CheckConstraint(
                condition=models.Q(outcome__in=["changed", "requested", "skipped"]), name="bulk_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} item {self.item_id}: {self.outcome}"
