"""History that cannot be rewritten: the document trace, and the hash-chained audit trail.

Every history row (a document event, an exception item event, a mapping version, an ownership
change) and every configuration change is copied into `AuditRecord` with a digest of its content,
in the same transaction. `services/audit.py` later seals records into a chain, in the order it
finds them: each sealed record holds the hash of its content and of the previous record, so an
edit anywhere breaks every hash after it. Database triggers (migration 0014) refuse UPDATE and
DELETE on these tables; `manage.py audit_verify` finds the first broken row if someone gets
round them.
"""

import hashlib
import json
from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


def canonical(value):
    """A value as the digest sees it: the same before saving and after reading back."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    return value if isinstance(value, (int, float, str, bool, type(None), dict, list)) else str(value)


def row_digest(obj) -> str:
    """SHA-256 of a history row's own columns (not its chain columns)."""
    content = {f.attname: canonical(getattr(obj, f.attname)) for f in obj._meta.concrete_fields}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def _actor_of(obj):
    for name in ("actor", "changed_by", "decided_by", "requested_by"):
        if hasattr(obj, f"{name}_id"):
            return getattr(obj, f"{name}_id")
    return None


class AuditRecord(models.Model):
    """One row of the audit chain. `source` names the history table (or configuration model) and
    `row_id` its row; `data` holds what a configuration change set (a history row is its own copy)."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=60)
    row_id = models.CharField(max_length=64)
    action = models.CharField(max_length=40)
    actor_id = models.BigIntegerField(null=True, blank=True)  # no FK: history outlives any account row
    actor_name = models.CharField(max_length=150, blank=True)
    data = models.JSONField(default=dict, blank=True)
    row_hash = models.CharField(max_length=64)
    # Set once by the sealer, never again (the trigger allows only that one UPDATE).
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    chain_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["source", "row_id"]),
            models.Index(fields=["id"], condition=models.Q(seq__isnull=True), name="audit_unsealed"),
        ]

    def __str__(self):
        return f"#{self.seq or '-'} {self.source}:{self.row_id} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk:
            raise TypeError("audit records are append-only")
        self.row_hash = self.content_hash()
        super().save(*args, **kwargs)

    def content_hash(self) -> str:
        content = {
            "at": canonical(self.at),
            "source": self.source,
            "row_id": self.row_id,
            "action": self.action,
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "data": self.data,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()

    @staticmethod
    def link(prev_hash: str, row_hash: str, seq: int) -> str:
        return hashlib.sha256(f"{seq}:{prev_hash}:{row_hash}".encode()).hexdigest()


class AuditHead(models.Model):
    """The chain's last sealed record: one row, locked by the sealer so that only one seals at a time."""

    seq = models.BigIntegerField(default=0)
    chain_hash = models.CharField(max_length=64, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"chain head #{self.seq}"


def _records_for(objs, action: str = "") -> list[AuditRecord]:
    records = []
    for obj in objs:
        record = AuditRecord(
            at=timezone.now(),
            source=obj._meta.db_table,
            row_id=str(obj.pk),
            action=action or getattr(obj, "action", "") or "added",
            actor_id=_actor_of(obj),
            data={"digest": row_digest(obj)},
        )
        record.row_hash = record.content_hash()
        records.append(record)
    return records


class AppendOnlyQuerySet(models.QuerySet):
    """History rows: inserted (and copied into the audit chain) but never updated or deleted."""

    def update(self, **kwargs):
        raise TypeError("history rows are append-only")

    def delete(self):
        raise TypeError("history rows are append-only")

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        AuditRecord.objects.bulk_create(_records_for([o for o in created if o.pk is not None]))
        return created


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        # Guard, not logic: an event once written is never rewritten.
        if self.pk:
            raise TypeError("history rows are append-only")
        super().save(*args, **kwargs)
        AuditRecord.objects.bulk_create(_records_for([self]))


class DocumentEvent(AppendOnlyModel):
    document = models.ForeignKey("workbench.Document", related_name="events", on_delete=models.PROTECT)
    at = models.DateTimeField(db_index=True)
    system = models.CharField(max_length=30, help_text="Where it happened: concur, workbench, business_central")
    action = models.CharField(max_length=40)
    message = models.TextField(blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    correlation_id = models.UUIDField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.system} {self.action}"
