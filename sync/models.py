"""Sync state: cursors, runs, reconciliations and worker heartbeats.

- `SyncCursor` remembers where each (connection, stream) read stopped; it moves only with
  committed data, and its lease makes sure one worker reads a stream at a time.
- `SyncRun` is one job's progress and counts, shown on the sync page.
- The outbox (`OutboundWrite`) is a domain model (workbench/models/outbox.py): the domain records
  what it wants told; sync delivers it.
- `ReconciliationRun` is one nightly comparison of the ERP's master data with our copies, and each
  `DriftRecord` one record that differs: added in the ERP, changed there without the timestamp an
  incremental read relies on, or deleted there. Drift becomes RECONCILIATION_DRIFT work
  (workbench/services/reconciliation_items.py); a person repairs it from the item.
- `ProofLine` is the nightly proof of one run: per entity, period and currency, what we posted and
  what the ERP holds for those same documents.
"""

from django.db import models
from django.utils import timezone


class SyncCursor(models.Model):
    connection = models.ForeignKey("workbench.Connection", on_delete=models.CASCADE, related_name="cursors")
    stream = models.CharField(max_length=60)
    value = models.JSONField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "stream"], name="uniq_cursor")]

    def __str__(self):
        return f"{self.connection_id}:{self.stream}"


class SyncRun(models.Model):
    class Job(models.TextChoices):
        MASTER_DATA = "master_data", "Master data pull"
        EXPENSE_PULL = "expense_pull", "Expense report pull"
        POSTING_STATUS = "posting_status", "ERP posting status pull"
        PROCUREMENT_PULL = "procurement_pull", "Procurement pull (requisitions, receipts, invoices)"
        APPROVALS_PULL = "approvals_pull", "Approval decisions pull"
        IDENTITY_PULL = "identity_pull", "Employee directory pull"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"

    connection = models.ForeignKey("workbench.Connection", on_delete=models.CASCADE, related_name="runs")
    job = models.CharField(max_length=20, choices=Job.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    triggered_by = models.CharField(max_length=150, default="schedule")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    records_read = models.PositiveIntegerField(default=0)
    records_posted = models.PositiveIntegerField(default=0)
    records_failed = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["connection", "job", "-started_at"])]

    def __str__(self):
        return f"{self.job} #{self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.SKIPPED)


class ReconciliationRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"

    connection = models.ForeignKey("workbench.Connection", on_delete=models.CASCADE, related_name="reconciliations")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    triggered_by = models.CharField(max_length=150, default="schedule")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    compared = models.PositiveIntegerField(default=0, help_text="ERP records read and compared.")
    added = models.PositiveIntegerField(default=0, help_text="In the ERP, not here.")
    changed = models.PositiveIntegerField(default=0, help_text="Here, with other values than the ERP's.")
    deleted = models.PositiveIntegerField(default=0, help_text="Here, no longer in the ERP.")
    unreadable = models.PositiveIntegerField(default=0, help_text="ERP records that could not be compared.")
    streams_done = models.PositiveIntegerField(default=0)
    streams_total = models.PositiveIntegerField(null=True, blank=True)
    summary = models.JSONField(
        default=dict, blank=True, help_text="Per stream: compared, added, changed, deleted, unreadable."
    )
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["connection", "-started_at"])]

    def __str__(self):
        return f"reconciliation #{self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.SKIPPED)

    @property
    def drift_total(self) -> int:
        return self.added + self.changed + self.deleted


class DriftRecord(models.Model):
    class Kind(models.TextChoices):
        ADDED = "added", "Added in the ERP"
        CHANGED = "changed", "Changed in the ERP"
        DELETED = "deleted", "Deleted in the ERP"

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="drift")
    stream = models.CharField(max_length=40)
    key = models.CharField(
        max_length=255, help_text="Natural key: entity/code; budgets entity/cost center/account/period."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    diffs = models.JSONField(default=dict, help_text="{field: [ours, the ERP's]}; null on the side that has no record.")
    erp_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["stream", "key"]
        constraints = [
            models.UniqueConstraint(fields=["run", "stream", "key"], name="uniq_drift_per_run"),
            models.CheckConstraint(
                condition=models.Q(kind__in=["added", "changed", "deleted"]), name="drift_kind_valid"
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.stream} {self.key}"


class ProofLine(models.Model):
    """The sum we posted and the sum the ERP holds for those documents, for one entity, period and currency."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="proof")
    entity = models.ForeignKey("workbench.LegalEntity", on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=7, help_text="YYYY-MM")
    currency = models.CharField(max_length=3)
    ours = models.DecimalField(max_digits=20, decimal_places=4, help_text="Sum of what the workbench posted.")
    erp = models.DecimalField(max_digits=20, decimal_places=4, help_text="Sum the ERP holds for those documents.")
    difference = models.DecimalField(max_digits=20, decimal_places=4, help_text="Ours minus the ERP's.")
    documents = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["entity__code", "period", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["run", "entity", "period", "currency"], name="uniq_proof_line"),
            models.CheckConstraint(condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="proof_currency_iso"),
        ]

    def __str__(self):
        return f"{self.period} {self.currency}: {self.ours} / {self.erp}"


class WorkerBeat(models.Model):
    """When each worker last took or finished a task: /healthz tells a stalled worker from an idle one."""

    name = models.CharField(max_length=200, unique=True, help_text="The worker's node name, e.g. worker-1@host.")
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    last_task_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
