"""Documents: the money documents that travel between systems (expense reports first).

One header table and one line table for every kind of document (`kind` says which), so that the
queue, the trace and the API treat them alike. Each document has:

- a correlation id that travels with every event, task and log line about it;
- its id in every system it passed through (`DocumentRef`, the crosswalk);
- two independent states: `business_status` (what the source's approval says) and
  `financial_status` (whether the ERP has accepted it). An approved report can be unposted, and a
  posted one can still be unpaid;
- `version` (the source's) and `revision` (ours: bumped by every correction made here), which
  together make the posting's idempotency key.
"""

import uuid

from django.db import models

from .masterdata import LegalEntity
from .outbox import write_key

CURRENCY_CHECK = models.Q(currency__regex=r"^[A-Z]{3}$")


class BusinessStatus(models.TextChoices):
    DRAFT = "draft", "Draft (with the requester)"
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class FinancialStatus(models.TextChoices):
    NOT_POSTED = "not_posted", "Not posted"
    POSTING = "posting", "Posting"
    POSTED = "posted", "Posted"
    READY_FOR_PAYMENT = "ready_for_payment", "Ready for payment"
    REJECTED = "rejected", "Rejected by ERP"
    PAID = "paid", "Paid"


class Document(models.Model):
    class Kind(models.TextChoices):
        EXPENSE_REPORT = "expense_report", "Expense report"
        REQUISITION = "requisition", "Requisition"
        PURCHASE_ORDER = "purchase_order", "Purchase order"
        GOODS_RECEIPT = "goods_receipt", "Goods receipt"
        SUPPLIER_INVOICE = "supplier_invoice", "Supplier invoice"

    BusinessStatus = BusinessStatus
    FinancialStatus = FinancialStatus

    class MatchStatus(models.TextChoices):
        NONE = "", "—"
        MATCHED = "matched", "Matched"
        EXCEPTION = "exception", "Match exception"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.EXPENSE_REPORT)
    correlation_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source_system = models.CharField(max_length=30)
    source_id = models.CharField(max_length=100)
    number = models.CharField(max_length=60, blank=True)
    name = models.CharField(max_length=300, blank=True)
    entity = models.ForeignKey(LegalEntity, null=True, blank=True, on_delete=models.PROTECT)
    entity_code = models.CharField(max_length=20, blank=True, help_text="As the source sent it.")
    party_code = models.CharField(max_length=40, blank=True, help_text="Employee (or supplier) code.")
    party_name = models.CharField(max_length=200, blank=True)
    party_tax_id = models.CharField(max_length=40, blank=True, help_text="Supplier's tax id as the document gave it.")
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=20, decimal_places=4)
    version = models.CharField(max_length=20, default="1")
    revision = models.PositiveIntegerField(default=0)
    business_status = models.CharField(max_length=10, choices=BusinessStatus.choices, default=BusinessStatus.APPROVED)
    financial_status = models.CharField(
        max_length=20, choices=FinancialStatus.choices, default=FinancialStatus.NOT_POSTED
    )
    # Procure-to-pay: a PO's requisition, an invoice's or receipt's PO.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    requester_code = models.CharField(max_length=40, blank=True, help_text="Who asked for it (requisitions, POs).")
    document_date = models.DateField(null=True, blank=True, help_text="Invoice date, receipt date, order date.")
    po_number = models.CharField(max_length=60, blank=True, help_text="The PO an invoice or receipt refers to.")
    # Credit notes: the invoice one corrects (its ERP number is what the ERP's credit memo is applied
    # to), and that invoice's number as the supplier gave it, kept until the invoice itself arrives.
    corrects = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="credit_notes")
    corrects_number = models.CharField(
        max_length=60, blank=True, help_text="Credit notes: the number of the invoice it corrects, as sent."
    )
    number_key = models.CharField(
        max_length=60,
        blank=True,
        db_index=True,
        help_text="Invoices: the number normalized for duplicate checks (case, spaces, dashes, leading zeros).",
    )
    match_status = models.CharField(max_length=10, choices=MatchStatus.choices, default="", blank=True)
    # Supplier invoices: when they are due and what paying early saves (workbench/due_dates.py).
    due_date = models.DateField(null=True, blank=True)
    payment_terms = models.CharField(max_length=100, blank=True, help_text="The terms' code or text.")
    discount_percent = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    discount_due_date = models.DateField(null=True, blank=True, help_text="Pay by this date to take the discount.")
    payment_terms_note = models.CharField(
        max_length=500, blank=True, help_text="Why a term the source sent was not kept, or could not be worked out."
    )
    erp_document_number = models.CharField(max_length=60, blank=True)
    erp_fiscal_year = models.CharField(max_length=4, blank=True)
    erp_posting_date = models.DateField(null=True, blank=True, help_text="The posting date the ERP gave the document.")
    erp_message = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["source_system", "source_id"], name="uniq_document_source"),
            models.CheckConstraint(condition=CURRENCY_CHECK, name="document_currency_iso"),
            # Choices alone do not constrain data; the transitions live in services/documents.py.
            models.CheckConstraint(
                condition=models.Q(financial_status__in=FinancialStatus.values), name="document_financial_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(business_status__in=BusinessStatus.values), name="document_business_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["financial_status"]),
            models.Index(fields=["kind", "po_number"]),
            # duplicate-invoice candidates: same day and amount
            models.Index(fields=["document_date", "total"]),
            # "Find anything" (selectors/find.py): exact lookups of any id a document has.
            models.Index(fields=["number"], name="document_number_idx"),
            models.Index(fields=["source_id"], name="document_source_id_idx"),
            models.Index(fields=["erp_document_number"], name="document_erp_number_idx"),
            models.Index(fields=["party_tax_id"], name="document_party_tax_id_idx"),
            models.Index(fields=["entity", "party_code"], name="document_entity_party_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.number or self.source_id}"

    @property
    def posting_key(self) -> str:
        """Idempotency key of the posting of this content: source document, its version, our revision."""
        return write_key(self, "post")


class DocumentLine(models.Model):
    document = models.ForeignKey(Document, related_name="lines", on_delete=models.CASCADE)
    line_no = models.PositiveIntegerField()
    external_id = models.CharField(max_length=100, blank=True)
    date = models.DateField(null=True, blank=True)
    category = models.CharField(max_length=40, blank=True)
    category_name = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    merchant = models.CharField(max_length=200, blank=True)
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    currency = models.CharField(max_length=3)
    original_amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    original_currency = models.CharField(max_length=3, blank=True)
    gl_account = models.CharField(max_length=40, blank=True)
    cost_center = models.CharField(max_length=40, blank=True)
    project = models.CharField(max_length=40, blank=True)
    tax_code = models.CharField(max_length=40, blank=True)
    # Procure-to-pay lines: quantities and prices, and the PO line a receipt or invoice line is for.
    quantity = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    unit_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    uom = models.CharField(max_length=10, blank=True)
    supplier_code = models.CharField(max_length=40, blank=True)
    po_line_no = models.PositiveIntegerField(null=True, blank=True)
    po_line = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="matched_lines")
    received_quantity = models.DecimalField(
        max_digits=20, decimal_places=4, default=0, help_text="PO lines: received so far"
    )
    invoiced_quantity = models.DecimalField(
        max_digits=20, decimal_places=4, default=0, help_text="PO lines: matched invoices so far"
    )
    match_status = models.CharField(max_length=10, blank=True, default="")

    class Meta:
        ordering = ["document_id", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["document", "line_no"], name="uniq_line_no"),
            models.CheckConstraint(condition=CURRENCY_CHECK, name="line_currency_iso"),
        ]

    def __str__(self):
        return f"line {self.line_no}"


class DocumentRef(models.Model):
    """Crosswalk: a document's id in one external system."""

    document = models.ForeignKey(Document, related_name="refs", on_delete=models.CASCADE)
    system = models.CharField(max_length=30)
    kind = models.CharField(
        max_length=30, help_text="What the id names there: fis_doc, report, erp_invoice, erp_number"
    )
    external_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["system", "kind", "external_id"], name="uniq_document_ref")]
        indexes = [models.Index(fields=["external_id"], name="document_ref_external_id_idx")]  # find by id alone

    def __str__(self):
        return f"{self.system}:{self.kind}:{self.external_id}"
