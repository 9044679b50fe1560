"""Exception items: everything that stops a document, as work for a person.

An item has a stable `code` (the rule that raised it), a `category` and a `kind`: business items
go to finance queues, technical ones to the integration team. `status` moves only through the
transition table in `services/exception_items.py`; `resolved` is reached when the rule passes
again, never by a button alone. Items sharing a `root_cause_key` belong to one `ExceptionGroup`,
so one fix can resolve them all. One item per `fingerprint` ever: if the rule fires again, the
same item is reopened (an event), not duplicated.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .audit import AppendOnlyModel
from .documents import CURRENCY_CHECK


class Status(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING = "waiting", "Waiting"
    RESOLVED = "resolved", "Resolved"
    OVERRIDDEN = "overridden", "Overridden"


ACTIVE_STATUSES = (Status.OPEN, Status.IN_PROGRESS, Status.WAITING)


class Category(models.TextChoices):
    MASTER_DATA = "master_data", "Master data"
    POLICY = "policy", "Policy"
    POSTING = "posting", "Posting"
    MATCHING = "matching", "Invoices & matching"
    APPROVAL = "approval", "Requisitions & approvals"
    TECHNICAL = "technical", "Technical"


class WaitFor(models.TextChoices):
    """The business events a snoozed item can wait for; the sync that observes one wakes its items."""

    PERIOD_OPEN = "period_open", "the period to open"
    SUPPLIER_UNBLOCKED = "supplier_unblocked", "the supplier to be unblocked"
    RECEIPT_ARRIVED = "receipt_arrived", "the goods receipt"
    CONNECTION_UP = "connection_up", "the connection to recover"
    APPROVER_BACK = "approver_back", "the approver to be back"
    MASTER_DATA_VALUE = "master_data_value", "the value to appear in the ERP"


# A snoozed item: waiting for a date or an event (any other wait is a fix or a retry in flight).
SNOOZED = models.Q(status="waiting") & (models.Q(snoozed_until__isnull=False) | ~models.Q(wait_for=""))


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class ExceptionGroup(models.Model):
    root_cause_key = models.CharField(max_length=200, unique=True)
    code = models.CharField(max_length=40)
    title = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.title


class ExceptionItem(models.Model):
    Status = Status
    WaitFor = WaitFor
    Category = Category
    Severity = Severity

    class Kind(models.TextChoices):
        BUSINESS = "business", "Business (finance)"
        TECHNICAL = "technical", "Technical (integration)"

    fingerprint = models.CharField(max_length=200, unique=True)
    code = models.CharField(max_length=40, db_index=True)
    category = models.CharField(max_length=12, choices=Category.choices)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    message = models.TextField()
    document = models.ForeignKey(
        "workbench.Document", null=True, blank=True, related_name="exceptions", on_delete=models.PROTECT
    )
    # SET_NULL: a new version replaces lines, but the items (and their history) must survive it.
    line = models.ForeignKey(
        "workbench.DocumentLine", null=True, blank=True, related_name="exceptions", on_delete=models.SET_NULL
    )
    connection = models.ForeignKey(
        "workbench.Connection", null=True, blank=True, related_name="exceptions", on_delete=models.PROTECT
    )
    entity = models.ForeignKey("workbench.LegalEntity", null=True, blank=True, on_delete=models.SET_NULL)
    amount_at_risk = models.DecimalField(max_digits=20, decimal_places=4, default=0)
    currency = models.CharField(max_length=3, default="USD")
    owner_team = models.CharField(max_length=40)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    group = models.ForeignKey(ExceptionGroup, null=True, blank=True, related_name="items", on_delete=models.SET_NULL)
    root_cause_key = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    search = models.TextField(blank=True, default="", help_text="Lower-case text the queue's search looks in.")
    correlation_id = models.UUIDField(null=True, blank=True)
    opened_at = models.DateTimeField(default=timezone.now, db_index=True)
    sla_due_at = models.DateTimeField()
    # When the period the item's document must post into closes for it (expense or AP cut-off, or
    # the ERP's close): workbench/selectors/calendars.py. Indexed: the queue's default order starts with it.
    close_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Snooze (services/snooze.py): until a date, or until `wait_for` happens to `wait_key` (what exactly,
    # e.g. "period:NW-US:2026-12"). Cleared whenever the item leaves `waiting`.
    snoozed_until = models.DateTimeField(null=True, blank=True)
    wait_for = models.CharField(max_length=20, choices=WaitFor.choices, blank=True, default="")
    wait_key = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["opened_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=Status.values), name="exception_status_valid"),
            models.CheckConstraint(condition=models.Q(category__in=Category.values), name="exception_category_valid"),
            models.CheckConstraint(condition=CURRENCY_CHECK, name="exception_currency_iso"),
            models.CheckConstraint(
                condition=models.Q(wait_for__in=["", *WaitFor.values]), name="exception_wait_for_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "opened_at"]),
            # The queue's default view: active items, most urgent first.
            models.Index(
                fields=["sla_due_at", "id"],
                condition=models.Q(status__in=["open", "in_progress", "waiting"]),
                name="exception_active_by_sla",
            ),
            # Tab counts of active items per category: answered from the index alone.
            models.Index(
                fields=["category", "id"],
                condition=models.Q(status__in=["open", "in_progress", "waiting"]),
                name="exception_active_by_category",
            ),
            # The queue's "By root cause" view: active items summed per group from the index alone
            # (PostgreSQL; other databases ignore INCLUDE and keep a plain partial index).
            models.Index(
                fields=["group"],
                include=[
                    "id",
                    "amount_at_risk",
                    "currency",
                    "opened_at",
                    "sla_due_at",
                    "status",
                    "entity",
                    "category",
                    "code",
                ],
                condition=models.Q(status__in=["open", "in_progress", "waiting"], group__isnull=False),
                name="exception_active_by_group",
            ),
            models.Index(fields=["category", "status"]),
            models.Index(fields=["entity", "status"]),
            # Wakes: a sync looks up the items waiting for what it just saw, one query per page.
            models.Index(
                fields=["wait_for", "wait_key"], condition=models.Q(status="waiting"), name="exception_snoozed_event"
            ),
            models.Index(
                fields=["snoozed_until"],
                condition=models.Q(status="waiting", snoozed_until__isnull=False),
                name="exception_snoozed_date",
            ),
        ]

    def __str__(self):
        return f"{self.code} #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def age(self):
        return (self.resolved_at or timezone.now()) - self.opened_at

    @property
    def snoozed(self) -> bool:
        return self.status == Status.WAITING and (self.snoozed_until is not None or bool(self.wait_for))

    @property
    def overdue(self) -> bool:
        return self.is_active and timezone.now() > self.sla_due_at


class ExceptionEvent(AppendOnlyModel):
    item = models.ForeignKey(ExceptionItem, related_name="events", on_delete=models.PROTECT)
    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=40)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    reason = models.TextField(blank=True)
    correlation_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.item_id} {self.action}"
