"""Connections: one configured external system (an ERP, an expense platform...).

Admins edit these; sync reads them. `health` is what the integration team sees: a connection that
keeps failing is `down`, its outbound writes are held, and one technical exception item stands for
the outage instead of hundreds of record-level items.
"""

from django.db import models

from workbench.secrets import sealed


class Connection(models.Model):
    class Role(models.TextChoices):
        ERP = "erp", "ERP (system of record)"
        EXPENSE = "expense", "Expense platform"
        PROCUREMENT = "procurement", "Procurement suite"
        APPROVALS = "approvals", "Approval engine"
        IDENTITY = "identity", "Identity provider"

    class Health(models.TextChoices):
        UNKNOWN = "unknown"
        OK = "ok"
        DOWN = "down"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=40, help_text="Connector kind, e.g. business_central, concur")
    role = models.CharField(max_length=12, choices=Role.choices)
    config = models.JSONField(default=dict, help_text="base_url, client_id, client_secret, page_size, timeout")
    enabled = models.BooleanField(default=True)
    health = models.CharField(max_length=10, choices=Health.choices, default=Health.UNKNOWN)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    down_since = models.DateTimeField(null=True, blank=True, help_text="When it went down; empty while it answers")
    master_data_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        # Secrets never reach the table in clear, whichever screen, command or shell saved them.
        self.config = sealed(self.config)
        super().save(*args, **kwargs)
