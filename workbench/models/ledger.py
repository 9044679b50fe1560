"""ERP postings: every document the workbench booked in the ERP, as the ERP numbered it.

One row per ERP document we created (an expense report or supplier invoice posted as a purchase
invoice, a credit note as a purchase credit memo, an accrual journal and its reversal), written in
the transaction that records the ERP's answer. It is what the nightly proof sums per entity, period
and currency, and what the posted-document reconciliation looks up in the ERP again.

``amount`` is signed from the books' point of view: what the posting adds to the entity's payables
or accrued costs (an invoice +, a credit memo -, an accrual +, its reversal -), in ``currency``
(the document's own; never converted).
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .documents import CURRENCY_CHECK


class ErpPosting(models.Model):
    class Kind(models.TextChoices):
        EXPENSE_REPORT = "expense_report", "Expense report (purchase invoice)"
        SUPPLIER_INVOICE = "supplier_invoice", "Supplier invoice (purchase invoice)"
        CREDIT_MEMO = "credit_memo", "Credit note (purchase credit memo)"
        ACCRUAL = "accrual", "Accrual journal"
        ACCRUAL_REVERSAL = "accrual_reversal", "Accrual reversal journal"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    connection = models.ForeignKey("workbench.Connection", on_delete=models.PROTECT, related_name="postings")
    entity = models.ForeignKey("workbench.LegalEntity", on_delete=models.PROTECT, related_name="postings")
    document = models.ForeignKey(
        "workbench.Document", null=True, blank=True, on_delete=models.PROTECT, related_name="erp_postings"
    )
    write = models.OneToOneField(
        "workbench.OutboundWrite", null=True, blank=True, on_delete=models.PROTECT, related_name="erp_posting"
    )
    erp_id = models.CharField(max_length=100, help_text="The ERP's id of the document (BC: its GUID).")
    erp_number = models.CharField(max_length=60, blank=True, help_text="The ERP's number (BC: 108001).")
    reference = models.CharField(
        max_length=60,
        blank=True,
        help_text="The number we sent: vendor invoice / credit memo number, journal document no.",
    )
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    currency = models.CharField(max_length=3)
    posting_date = models.DateField()
    period = models.CharField(max_length=7, help_text="YYYY-MM of the posting date.")
    posted_at = models.DateTimeField(auto_now_add=True)
    # Set when the document was posted again because the ERP lost this one: kept as history, no
    # longer looked up nor summed by the nightly proof (its successor is).
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "kind", "erp_id"], name="uniq_erp_posting"),
            models.CheckConstraint(condition=CURRENCY_CHECK, name="erp_posting_currency_iso"),
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=["expense_report", "supplier_invoice", "credit_memo", "accrual", "accrual_reversal"]
                ),
                name="erp_posting_kind_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["entity", "period", "currency"]),
            # "Find anything": a document by the ERP's number or id, or by the number we sent.
            models.Index(fields=["erp_number"], name="erp_posting_erp_number_idx"),
            models.Index(fields=["erp_id"], name="erp_posting_erp_id_idx"),
            models.Index(fields=["reference"], name="erp_posting_reference_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.erp_number or self.erp_id}"


class ReconciliationSettings(models.Model):
    """How long the nightly reconciliation's drift rows and proof lines are kept (one row, edited by
    an admin on the reconciliation page; recorded in the audit trail like every setting)."""

    DEFAULT_RETENTION_DAYS = 90

    retention_days = models.PositiveIntegerField(
        default=DEFAULT_RETENTION_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Runs older than this lose their drift rows and proof lines (the run's counts stay).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "reconciliation settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(retention_days__gte=1, retention_days__lte=3650), name="retention_days_range"
            )
        ]

    def __str__(self):
        return f"Keep reconciliation detail {self.retention_days} days"
