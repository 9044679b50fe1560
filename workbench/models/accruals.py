"""Period-end accruals: the received-not-invoiced cost of a period, booked in the ERP as a journal.

One `AccrualJournal` per entity, period and kind: the accrual (dated the period's last day) and its
reversal (the first day of the next period, same lines with the opposite sign, its own document
number). A journal is in the entity's currency; lines in other currencies are listed in
`left_out` and never converted without a rate. Every request and every answer of the ERP is an
`AccrualJournalEvent` (append-only, copied into the audit chain): who posted which accrual, when.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .audit import AppendOnlyModel
from .documents import CURRENCY_CHECK


class AccrualJournal(models.Model):
    class Kind(models.TextChoices):
        ACCRUAL = "accrual", "Accrual"
        REVERSAL = "reversal", "Reversal"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        POSTED = "posted", "Posted"
        REFUSED = "refused", "Refused by the ERP"
        FAILED = "failed", "Not delivered"

    entity = models.ForeignKey("workbench.LegalEntity", on_delete=models.PROTECT, related_name="accrual_journals")
    period = models.CharField(max_length=7, help_text="YYYY-MM of the accrued period (the reversal's too).")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    document_number = models.CharField(max_length=20, help_text="The journal's document number in the ERP.")
    posting_date = models.DateField()
    amount = models.DecimalField(max_digits=20, decimal_places=4, help_text="Signed: the reversal is negative.")
    currency = models.CharField(max_length=3)
    lines = models.JSONField(default=list, help_text="[{cost_center, account, amount, description}]")
    left_out = models.JSONField(default=list, help_text="Lines in another currency: [{currency, amount, lines}]")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    attempt = models.PositiveIntegerField(default=1, help_text="Bumped when a refused journal is posted again.")
    write = models.OneToOneField(
        "workbench.OutboundWrite", null=True, blank=True, on_delete=models.PROTECT, related_name="accrual_journal"
    )
    erp_number = models.CharField(max_length=60, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    requested_at = models.DateTimeField(default=timezone.now)
    posted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period", "entity_id", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["entity", "period", "kind"], name="uniq_accrual_journal"),
            models.CheckConstraint(condition=CURRENCY_CHECK, name="accrual_journal_currency_iso"),
            models.CheckConstraint(condition=models.Q(kind__in=["accrual", "reversal"]), name="accrual_journal_kind"),
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "posted", "refused", "failed"]), name="accrual_journal_status"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.document_number} ({self.period})"


class AccrualJournalEvent(AppendOnlyModel):
    journal = models.ForeignKey(AccrualJournal, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=20)  # requested, posted, refused, failed
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.journal_id}"
