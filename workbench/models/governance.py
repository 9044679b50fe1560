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
from django.db import models

from .audit import AppendOnlyQuerySet


class FieldOwnership(models.Model):
    object_type = models.CharField(max_length=40)
    field = models.CharField(max_length=40)
    owner = models.CharField(max_length=12, help_text="Connection role that is the source of record")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    changed_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["object_type", "field", "-changed_at", "-id"]
        indexes = [models.Index(fields=["object_type", "field", "-id"])]

    def __str__(self):
        return f"{self.object_type}.{self.field} -> {self.owner}"

    def save(self, *args, **kwargs):
        if self.pk:
            raise TypeError("ownership history rows are append-only")
        super().save(*args, **kwargs)


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
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
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
