"""Master data: the accounting structures every system shares.

The ERP is the system of record for all of it. Rows here are copies kept by the master-data sync
(`erp_id` is the ERP's id); the app shows them read-only and never writes them back.
"""

from django.db import models


class MasterData(models.Model):
    erp_id = models.CharField(max_length=64, blank=True, db_index=True, help_text="The ERP's id (crosswalk).")
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class LegalEntity(MasterData):
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "legal entities"

    def __str__(self):
        return f"{self.code} {self.name}"


class EntityScoped(MasterData):
    entity = models.ForeignKey(LegalEntity, on_delete=models.CASCADE)
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True
        ordering = ["entity__code", "code"]

    def __str__(self):
        return f"{self.code} {self.name}".strip()


class AccountingPeriod(EntityScoped):
    """A month of one entity's books. `closed` periods accept no postings."""

    start = models.DateField()
    end = models.DateField()
    closed = models.BooleanField(default=False)

    class Meta(EntityScoped.Meta):
        constraints = [models.UniqueConstraint(fields=["entity", "code"], name="uniq_period_code")]
        ordering = ["entity__code", "start"]


class CostCenter(EntityScoped):
    active = models.BooleanField(default=True)
    owner_code = models.CharField(max_length=40, blank=True, help_text="Employee code of the owner: first approver.")

    class Meta(EntityScoped.Meta):
        constraints = [models.UniqueConstraint(fields=["entity", "code"], name="uniq_cost_center_code")]


class GLAccount(EntityScoped):
    """An account of the ERP's chart. Only a `Posting` account that is not blocked and allows direct
    posting takes a document line: headings and totals only structure the chart."""

    POSTING = "Posting"

    category = models.CharField(max_length=40, blank=True)
    blocked = models.BooleanField(default=False)
    account_type = models.CharField(
        max_length=20, default=POSTING, help_text="Posting, Heading, Total, Begin-Total or End-Total (BC)."
    )
    direct_posting = models.BooleanField(default=True, help_text="Purchase and journal lines may post to it.")

    class Meta(EntityScoped.Meta):
        verbose_name = "GL account"
        constraints = [models.UniqueConstraint(fields=["entity", "code"], name="uniq_gl_account_code")]

    @property
    def refusal(self) -> str:
        """Why the ERP would refuse a line on this account, or "" (BC's checks, in BC's order)."""
        if self.blocked:
            return "is blocked in the ERP"
        if self.account_type != self.POSTING:
            return f"is a {self.account_type.lower() or 'non-posting'} account, not a posting account"
        if not self.direct_posting:
            return "does not allow direct posting"
        return ""


class TaxCode(EntityScoped):
    tax_type = models.CharField(max_length=40, blank=True)

    class Meta(EntityScoped.Meta):
        constraints = [models.UniqueConstraint(fields=["entity", "code"], name="uniq_tax_code_code")]


class Employee(EntityScoped):
    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"
        TERMINATED = "terminated"

    email = models.CharField(max_length=254, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    manager_code = models.CharField(
        max_length=40, blank=True, help_text="From the identity provider / approval engine."
    )
    cost_center = models.CharField(max_length=40, blank=True, help_text="Home cost center, from the identity provider.")

    class Meta(EntityScoped.Meta):
        constraints = [models.UniqueConstraint(fields=["entity", "code"], name="uniq_employee_code")]


class Project(EntityScoped):
    class Meta(EntityScoped.Meta):
        constraints = [models.UniqueConstraint(fields=["entity", "code"], name="uniq_project_code")]


class PaymentTerm(EntityScoped):
    """When a supplier or employee is paid: the ERP's due-date formula (e.g. ``30D``, ``CM+10D``)."""

    due_date_calculation = models.CharField(max_length=40, blank=True)
    discount_date_calculation = models.CharField(
        max_length=40, blank=True, help_text="Pay within this to take the discount."
    )
    discount_percent = models.DecimalField(max_digits=7, decimal_places=4, default=0)

    class Meta(EntityScoped.Meta):
        constraints = [models.UniqueConstraint(fields=["entity", "code"], name="uniq_payment_term_code")]


class Currency(EntityScoped):
    """A currency an entity books in besides its own (the ERP's currency table): ISO code and decimals."""

    entity = models.ForeignKey(
        LegalEntity, on_delete=models.CASCADE, related_name="currencies"
    )  # `currency` is the entity's own
    symbol = models.CharField(max_length=8, blank=True)
    decimals = models.PositiveSmallIntegerField(default=2)

    class Meta(EntityScoped.Meta):
        verbose_name_plural = "currencies"
        constraints = [models.UniqueConstraint(fields=["entity", "code"], name="uniq_currency_code")]
