"""Alerts: admin-defined conditions that tell people when something needs them now.

An `AlertRule` names a condition (a connection down too long, an item above an amount, a breached
SLA, a period closing soon, a growing backlog), optional filters, who is told and how. The evaluator
(`services/alerts.py`) runs every minute and keeps one `AlertFiring` per rule and subject (a
connection, an item, an entity) while the condition holds: each subject fires once, and says once
when it is resolved. A chat webhook call is an `AlertChatDelivery` row, sent by sync outside any
transaction, so a dead chat server is recorded on the firing and never stops the evaluator.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .documents import CURRENCY_CHECK


class Condition(models.TextChoices):
    CONNECTION_DOWN = "connection_down", "Connection down longer than N minutes"
    AMOUNT_ABOVE = "amount_above", "Item above an amount"
    SLA_BREACHED = "sla_breached", "SLA breached"
    CLOSE_RISK = "close_risk", "Close risk inside N hours"
    BACKLOG_GROWTH = "backlog_growth", "Backlog growing faster than a rate"


class AlertRule(models.Model):
    Condition = Condition

    class Target(models.TextChoices):
        ROLE = "role", "A role"
        TEAM = "team", "A team"
        PERSON = "person", "A person"

    class ChatFormat(models.TextChoices):
        NONE = "", "No chat"
        SLACK = "slack", "Slack incoming webhook"
        TEAMS = "teams", "Microsoft Teams incoming webhook"

    name = models.CharField(max_length=100, unique=True)
    condition = models.CharField(max_length=20, choices=Condition.choices)
    enabled = models.BooleanField(default=True)
    # Thresholds: which ones apply depends on the condition (checked by the service).
    minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Connection down: longer than this")
    hours = models.PositiveIntegerField(null=True, blank=True, help_text="Close risk: inside; backlog: over")
    amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, help_text="Amount rule: only items in this currency")
    growth = models.PositiveIntegerField(null=True, blank=True, help_text="Backlog: more new active items than this")
    # Optional filters on the items a rule looks at.
    entity = models.ForeignKey("workbench.LegalEntity", null=True, blank=True, on_delete=models.PROTECT)
    kind = models.CharField(max_length=10, blank=True, help_text="business or technical; blank: both")
    code = models.CharField(max_length=40, blank=True)
    # Who is told, and how.
    target = models.CharField(max_length=6, choices=Target.choices, default=Target.ROLE)
    target_role = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    target_team = models.CharField(max_length=40, blank=True)
    target_person = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    email = models.BooleanField(default=False)
    chat_format = models.CharField(max_length=5, choices=ChatFormat.choices, blank=True, default="")
    chat_url = models.CharField(max_length=500, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(condition__in=Condition.values), name="alert_rule_condition_valid"
            ),
            models.CheckConstraint(condition=models.Q(currency="") | CURRENCY_CHECK, name="alert_rule_currency_iso"),
        ]

    def __str__(self):
        return self.name


class AlertFiring(models.Model):
    """One subject for which a rule's condition held, from when it fired until it cleared."""

    rule = models.ForeignKey(AlertRule, related_name="firings", on_delete=models.CASCADE)
    subject_key = models.CharField(max_length=100, help_text="connection:3, item:812, entity:7 ...")
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    item = models.ForeignKey("workbench.ExceptionItem", null=True, blank=True, on_delete=models.SET_NULL)
    connection = models.ForeignKey("workbench.Connection", null=True, blank=True, on_delete=models.SET_NULL)
    entity = models.ForeignKey("workbench.LegalEntity", null=True, blank=True, on_delete=models.SET_NULL)
    fired_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=100, blank=True, help_text="Why it closed: cleared, rule switched off")

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [
            # The claim two evaluators race for: while a subject is firing, a second insert fails.
            models.UniqueConstraint(
                fields=["rule", "subject_key"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_firing_once_while_active",
            )
        ]
        indexes = [models.Index(fields=["rule", "resolved_at"], name="alert_firing_by_rule")]

    def __str__(self):
        return f"{self.rule_id}:{self.subject_key}"

    @property
    def notification_key(self) -> str:
        return f"alert:{self.pk}"

    @property
    def resolved_key(self) -> str:
        return f"alert:{self.pk}:resolved"


class AlertChatDelivery(models.Model):
    """One chat message for a firing (when it fired, when it resolved), posted by sync."""

    class Phase(models.TextChoices):
        FIRED = "fired", "Fired"
        RESOLVED = "resolved", "Resolved"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    firing = models.ForeignKey(AlertFiring, related_name="chats", on_delete=models.CASCADE)
    phase = models.CharField(max_length=8, choices=Phase.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["firing", "phase"], name="alert_chat_once_per_phase"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "sending", "sent", "failed"]), name="alert_chat_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "id"], name="alert_chat_by_status")]

    def __str__(self):
        return f"{self.firing_id} {self.phase}: {self.status}"


class BacklogSample(models.Model):
    """Active items a backlog rule counted for one subject at one minute: what "N hours ago" reads."""

    rule = models.ForeignKey(AlertRule, related_name="samples", on_delete=models.CASCADE)
    subject_key = models.CharField(max_length=100)
    taken_at = models.DateTimeField()
    active = models.PositiveIntegerField()

    class Meta:
        ordering = ["taken_at"]
        indexes = [models.Index(fields=["rule", "subject_key", "taken_at"], name="backlog_sample_lookup")]

    def __str__(self):
        return f"{self.rule_id} {self.subject_key or 'total'} at {self.taken_at:%Y-%m-%d %H:%M}: {self.active}"
