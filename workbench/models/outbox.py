"""The outbox: every write to another system is first a row here, then a call, then a recorded answer.

A domain service that wants the ERP or a source system told something writes an `OutboundWrite`
in the same transaction as the state change that caused it, with a deterministic idempotency key
(Brandur Leach's idempotency keys; Sentry's webhook mailbox). `sync/push.py` claims due rows by
compare-and-set, calls the connector outside any transaction, and reports the outcome back through
`services/postings.py`. A killed worker leaves a row whose lease expires and which is tried again
with the same key, so a vendor that honours the key creates one document.

The table keeps its historic name (`sync_outboundwrite`): the row moved to the domain, not the data.
"""

from django.db import models
from django.utils import timezone


def write_key(base, *parts) -> str:
    """The one idempotency-key format: `<about>:<what>`, e.g. `concur:R-17:v3.r1:post`.

    `base` is a document (its source system and id, the source's version and our revision, so a new
    version or a correction gets a new key) or the text of a key a write derives from (an approval
    task's correlation key, or `<system>:<id>` for writes that must happen once per document).
    """
    if hasattr(base, "source_system"):
        base = f"{base.source_system}:{base.source_id}:v{base.version}.r{base.revision}"
    return ":".join([str(base), *(str(p) for p in parts)])


class OutboundWrite(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        DONE = "done"
        REJECTED = "rejected"  # the vendor refused it: a business outcome, recorded, not retried
        DEAD = "dead"  # gave up after SYNC_MAX_ATTEMPTS: a technical exception with a Replay action

    connection = models.ForeignKey("workbench.Connection", on_delete=models.PROTECT, related_name="writes")
    document = models.ForeignKey(
        "workbench.Document", null=True, blank=True, on_delete=models.PROTECT, related_name="writes"
    )
    run_id = models.BigIntegerField(
        null=True, blank=True, help_text="The sync run that queued it, so a run can show what it got posted."
    )
    action = models.CharField(max_length=40)
    idempotency_key = models.CharField(max_length=200, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    uncertain = models.BooleanField(default=False, help_text="A previous attempt may have reached the vendor.")
    last_error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "sync_outboundwrite"
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="sync_outbou_status_0d0012_idx")]

    def __str__(self):
        return self.idempotency_key
