"""ERP postings: every document the workbench booked in the ERP, as the ERP numbered it.

One row per ERP document we created (an expense report or supplier invoice posted as a purchase
invoice, a credit note as a purchase credit memo, an accrual journal and its reversal), written in
the transaction that records the ERP's answer. It is what the nightly proof sums per entity, period
and currency, and what the posted-document reconciliation looks up in the ERP again.

``amount`` is signed from the books' point of view: what the posting adds to the entity's payables
or accrued costs (an invoice +, a credit memo -, an accrual +, its reversal -), in ``currency``
(the document's own; never converted).
"""

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
        indexes = [models.Index(fields=["entity", "period", "currency"])]

    def __str__(self):
        return f"{self.get_kind_display()} {self.erp_number or self.erp_id}"
