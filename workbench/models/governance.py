"""Master-data governance: who owns each field, and each object's id in every system.

`FieldOwnership` is what an admin changed; fields without a row keep the owner named in
`workbench/ownership.py`. A change is kept with who made it and why, newest row wins
(append-only, like the mapping rule versions).

`MasterDataLink` is the crosswalk for master data: one row per object per external system. A link
made by an exact key (an employee number) or a certain supplier match is `confirmed` at once; a
likely or uncertain match is `proposed` and waits for a person; `rejected` remembers a "no" so
the same guess is not proposed again; `unmatched` means no candidate was found.
"""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from .audit import AppendOnlyModel


class FieldOwnership(AppendOnlyModel):
    object_type = models.CharField(max_length=40)
    field = models.CharField(max_length=40)
    owner = models.CharField(max_length=12, help_text="Connection role that is the source of record")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    changed_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["object_type", "field", "-changed_at", "-id"]
        indexes = [models.Index(fields=["object_type", "field", "-id"])]

    def __str__(self):
        return f"{self.object_type}.{self.field} -> {self.owner}"


class MasterDataLink(models.Model):
    class Status(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        PROPOSED = "proposed", "Waiting for confirmation"
        REJECTED = "rejected", "Rejected"
        UNMATCHED = "unmatched", "No match found"

    object_type = models.CharField(max_length=40)
    system = models.CharField(max_length=40, help_text="Connector kind: coupa, scim, einvoice...")
    external_id = models.CharField(max_length=128)
    external_number = models.CharField(max_length=64, blank=True)
    external_name = models.CharField(max_length=200, blank=True)
    tax_id = models.CharField(max_length=40, blank=True)
    iban = models.CharField(max_length=40, blank=True)
    country = models.CharField(max_length=2, blank=True)
    # The canonical object (the ERP's key); blank while unmatched.
    entity_code = models.CharField(max_length=20, blank=True)
    code = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    certainty = models.CharField(max_length=10, blank=True, help_text="certain, likely or uncertain")
    score = models.DecimalField(max_digits=4, decimal_places=3, default=0)
    reasons = models.JSONField(default=list, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    decided_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["object_type", "system", "external_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["object_type", "system", "external_id"], name="uniq_masterdata_link"),
            models.CheckConstraint(
                condition=models.Q(status__in=["confirmed", "proposed", "rejected", "unmatched"]),
                name="masterdata_link_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["object_type", "entity_code", "code"]), models.Index(fields=["status"])]

    def __str__(self):
        return f"{self.object_type} {self.system}:{self.external_id} -> {self.entity_code}/{self.code} ({self.status})"


class OverridePolicy(models.Model):
    """Whether an exception code may be overridden at all, by whom, and up to which amount alone.

    Codes without a row use `services/overrides.py: DEFAULT_POLICIES`; the item page and the
    server read the same `override_policy()`. Amounts are in the item's entity currency.
    """

    class Role(models.TextChoices):
        ANALYST = "analyst", "Finance analyst"
        ENGINEER = "engineer", "Integration engineer"
        MANAGER = "manager", "Finance manager"

    code = models.CharField(max_length=40, unique=True)
    overridable = models.BooleanField(default=False)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ANALYST)
    approval_above = models.DecimalField(
        max_digits=20,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Above this amount (entity currency) a finance manager who did not ask must approve; "
        "blank: never needs a second person.",
    )
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "override policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(approval_above__isnull=True) | models.Q(approval_above__gte=0),
                name="override_policy_threshold_not_negative",
            )
        ]

    def __str__(self):
        return f"{self.code}: {'overridable' if self.overridable else 'not overridable'}"


class OverrideReason(models.Model):
    """The admin-managed list of reason codes an override must name."""

    code = models.CharField(max_length=30, unique=True)
    label = models.CharField(max_length=200)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.label}"


class OverrideRequest(models.Model):
    """One override: asked, and applied at once within policy, or waiting for a second person."""

    class State(models.TextChoices):
        APPLIED = "applied", "Applied"
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved and applied"
        REFUSED = "refused", "Refused"

    item = models.ForeignKey("workbench.ExceptionItem", related_name="override_requests", on_delete=models.PROTECT)
    code = models.CharField(max_length=40)
    entity_code = models.CharField(max_length=20, blank=True)
    amount = models.DecimalField(max_digits=20, decimal_places=4, default=0)
    currency = models.CharField(max_length=3, blank=True)
    reason = models.ForeignKey(OverrideReason, on_delete=models.PROTECT)
    text = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.PROTECT)
    requested_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=10, choices=State.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.PROTECT
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_text = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["state", "requested_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=["applied", "pending", "approved", "refused"]),
                name="override_request_state_valid",
            ),
            # At most one waiting request per item: a second ask is the same request.
            models.UniqueConstraint(
                fields=["item"], condition=models.Q(state="pending"), name="one_pending_override_per_item"
            ),
        ]

    def __str__(self):
        return f"override {self.code} item {self.item_id} ({self.state})"


class Evidence(models.Model):
    """A file attached to an override or a fix: its type was read from its content when it came in."""

    item = models.ForeignKey("workbench.ExceptionItem", related_name="evidence", on_delete=models.PROTECT)
    override = models.ForeignKey(
        OverrideRequest, null=True, blank=True, related_name="evidence", on_delete=models.PROTECT
    )
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    path = models.CharField(max_length=300, help_text="Under EVIDENCE_DIR; named by digest, never by the upload's name")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.PROTECT)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["uploaded_at", "id"]

    def __str__(self):
        return self.name
