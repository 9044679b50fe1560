"""Procure-to-pay: suppliers, categories, contracts, budgets, approval routing and match settings.

Who owns what:
- the ERP owns the vendor master (`Supplier`, incl. `blocked`) and budgets (`Budget`);
- the procurement suite owns categories (commodities) and contracts;
- admins own the rules of this app: approval thresholds (`ApprovalRule`), delegations while an
  approver is away (`ApprovalDelegation`) and match tolerances (`MatchTolerance`), each change
  recorded with who made it.
`ApprovalTask` is one approver's step on one requisition; the approval engine holds the live task
(`external_id`) and its decision comes back here.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from .documents import CURRENCY_CHECK
from .masterdata import EntityScoped, LegalEntity


class Supplier(EntityScoped):
    class Blocked(models.TextChoices):
        NONE = "", "Not blocked"
        PAYMENT = "Payment", "Payments blocked"
        ALL = "All", "Blocked for all transactions"

    tax_id = models.CharField(max_length=40, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    blocked = models.CharField(max_length=10, choices=Blocked.choices, default="", blank=True)
    changed_by_email = models.CharField(
        max_length=254, blank=True, help_text="Who created or last changed it in the ERP (segregation of duties)."
    )
    active = models.BooleanField(default=True)
    payment_terms_code = models.CharField(max_length=40, blank=True, help_text="The vendor's payment terms in the ERP.")

    class Meta(EntityScoped.Meta):
        constraints = [models.UniqueConstraint(fields=["entity", "code"], name="uniq_supplier_code")]
        indexes = [models.Index(fields=["tax_id"], name="supplier_tax_id_idx")]  # a tax id finds its documents


class PurchaseCategory(models.Model):
    """A commodity of the procurement suite: its GL account and whether buying it needs a contract."""

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200, blank=True)
    gl_account = models.CharField(max_length=40, blank=True)
    contract_required = models.BooleanField(default=False)
    external_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "purchase categories"

    def __str__(self):
        return f"{self.code} {self.name}".strip()


class SupplierContract(models.Model):
    number = models.CharField(max_length=60, unique=True)
    supplier_code = models.CharField(max_length=40, db_index=True)
    category = models.CharField(max_length=40)
    start = models.DateField(null=True, blank=True)
    end = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, default="published")
    external_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["supplier_code", "number"]

    def __str__(self):
        return self.number

    def covers(self, day) -> bool:
        return (
            self.status == "published"
            and (self.start is None or self.start <= day)
            and (self.end is None or day <= self.end)
        )


class Budget(models.Model):
    entity = models.ForeignKey(LegalEntity, on_delete=models.CASCADE)
    cost_center = models.CharField(max_length=40)
    gl_account = models.CharField(max_length=40)
    period = models.CharField(
        max_length=7, help_text="YYYY-MM", validators=[RegexValidator(r"^\d{4}-(0[1-9]|1[0-2])$")]
    )
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    currency = models.CharField(max_length=3)
    erp_id = models.CharField(max_length=64, blank=True)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["entity__code", "cost_center", "gl_account", "period"]
        constraints = [
            models.UniqueConstraint(fields=["entity", "cost_center", "gl_account", "period"], name="uniq_budget"),
            models.CheckConstraint(condition=CURRENCY_CHECK, name="budget_currency_iso"),
        ]

    def __str__(self):
        return f"{self.entity_id}:{self.cost_center}:{self.gl_account}:{self.period}"


class AdminEdited(models.Model):
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ApprovalRule(AdminEdited):
    """Requisitions of `entity` (any if empty) and `category` (any if blank) from `min_amount` up need
    `levels` approvers up the cost center owner's hierarchy (1 = the owner; 2 = and their manager...)."""

    entity = models.ForeignKey(LegalEntity, null=True, blank=True, on_delete=models.CASCADE)
    category = models.CharField(max_length=40, blank=True)
    min_amount = models.DecimalField(max_digits=20, decimal_places=4, default=0, validators=[MinValueValidator(0)])
    levels = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(5)])
    extra_approver = models.CharField(max_length=40, blank=True, help_text="Employee code who also approves (e.g. IT).")
    sla_hours = models.PositiveIntegerField(default=48, validators=[MinValueValidator(1), MaxValueValidator(24 * 365)])
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["entity__code", "category", "min_amount"]
        constraints = [
            models.CheckConstraint(condition=models.Q(levels__gte=1, levels__lte=5), name="approval_levels_1_5")
        ]

    def __str__(self):
        return (
            f"{self.entity.code if self.entity else 'any'}/{self.category or 'any'} ≥ {self.min_amount}: {self.levels}"
        )


class ApprovalDelegation(AdminEdited):
    approver = models.CharField(max_length=40, help_text="Employee code of the approver who is away")
    delegate = models.CharField(max_length=40, help_text="Employee code who approves instead")
    start = models.DateField()
    end = models.DateField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-start"]

    def __str__(self):
        return f"{self.approver} → {self.delegate}"


class ApprovalTask(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Waiting for earlier steps"
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"

    document = models.ForeignKey("workbench.Document", on_delete=models.CASCADE, related_name="approval_tasks")
    sequence = models.PositiveSmallIntegerField()
    approver_code = models.CharField(max_length=40)
    approver_name = models.CharField(max_length=200, blank=True)
    delegated_from = models.CharField(max_length=40, blank=True)
    escalated_from = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=200, blank=True, help_text="Why this approver: rule and level")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    external_id = models.CharField(max_length=64, blank=True, db_index=True)
    correlation_key = models.CharField(max_length=200, unique=True)
    due_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    comments = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["document_id", "sequence", "id"]

    def __str__(self):
        return f"{self.document_id}#{self.sequence} {self.approver_code} {self.state}"


class MatchTolerance(AdminEdited):
    """Three-way match tolerances of one legal entity (or the default, entity empty)."""

    entity = models.OneToOneField(LegalEntity, null=True, blank=True, on_delete=models.CASCADE)
    price_pct = models.DecimalField(
        max_digits=7,
        decimal_places=3,
        default=2,
        validators=[MinValueValidator(0)],
        help_text="Unit price may exceed the PO's by this %",
    )
    qty_abs = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        default=0,
        validators=[MinValueValidator(0)],
        help_text="Invoiced quantity may exceed received by this",
    )
    amount_abs = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        default=25,
        validators=[MinValueValidator(0)],
        help_text="A line's variance may not exceed this amount (document currency); 0 = no cap",
    )
    accept_limit = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        default=1000,
        validators=[MinValueValidator(0)],
        help_text="Largest variance an analyst may accept; above it a finance manager must",
    )
    due_soon_days = models.PositiveSmallIntegerField(
        default=5,
        validators=[MaxValueValidator(60)],
        help_text="An invoice due within this many business days (Mon-Fri) rises in the queue",
    )

    class Meta:
        ordering = ["entity__code"]

    def __str__(self):
        return f"Tolerances {self.entity.code if self.entity else '(default)'}"
