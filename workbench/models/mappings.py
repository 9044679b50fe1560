"""Mapping rules: how a value one system spells its own way becomes the ERP's canonical value.

A rule says: in documents from `source_system` (any, if blank) of legal entity `entity` (any, if
empty), the `field` value `source_value` (or any value matching `pattern`, a regular expression
matched in full) means `target_value` -- from `effective_from` to `effective_to`. Rules fix causes:
once saved, the documents held by that value are mapped, re-validated and posted, and every later
document is mapped on arrival. Each change is a new `MappingRuleVersion` (who, when, what, why);
`MappingRun` is the background application of one version, with its progress.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .audit import AppendOnlyModel
from .masterdata import LegalEntity
from .patterns import PatternError, compile_pattern


class MappingRule(models.Model):
    class Field(models.TextChoices):
        COST_CENTER = "cost_center", "Cost center"
        TAX_CODE = "tax_code", "Tax code"
        GL_ACCOUNT = "gl_account", "GL account"
        ENTITY = "entity", "Legal entity"

    source_system = models.CharField(max_length=30, blank=True, help_text="e.g. concur, coupa; blank = any")
    entity = models.ForeignKey(
        LegalEntity,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text="Documents of this legal entity; empty = any",
    )
    field = models.CharField(max_length=20, choices=Field.choices)
    source_value = models.CharField(max_length=100, blank=True, help_text="The value as the source sends it")
    pattern = models.CharField(
        max_length=200, blank=True, help_text="Or a regular expression the whole value must match"
    )
    target_value = models.CharField(max_length=100, help_text="The ERP's canonical value")
    effective_from = models.DateField(null=True, blank=True)
    effective_to = models.DateField(null=True, blank=True)
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["field", "source_value", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(source_value="", pattern=""), name="mapping_has_value_or_pattern"
            ),
        ]

    def __str__(self):
        return f"{self.get_field_display()} {self.source_value or '/' + self.pattern + '/'} → {self.target_value}"

    def clean(self):
        if bool(self.source_value) == bool(self.pattern):
            raise ValidationError("Give either a value or a pattern.")
        if self.pattern:
            try:
                compile_pattern(self.pattern)
            except PatternError as exc:
                raise ValidationError({"pattern": str(exc)}) from None
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValidationError({"effective_to": "Ends before it starts."})

    def matches(self, value: str) -> bool:
        if self.source_value:
            return value == self.source_value
        try:
            return compile_pattern(self.pattern).fullmatch(value or "") is not None
        except PatternError:  # saved before patterns were checked by RE2: matches nothing until fixed
            return False

    def in_effect(self, day) -> bool:
        if day is None:
            return True
        return (self.effective_from is None or self.effective_from <= day) and (
            self.effective_to is None or day <= self.effective_to
        )


class MappingRuleVersion(AppendOnlyModel):
    """Append-only history of a rule: every save is a snapshot with its author and reason."""

    rule = models.ForeignKey(MappingRule, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=20)  # created, changed, deactivated
    snapshot = models.JSONField()
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    changed_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["rule_id", "-version"]
        constraints = [models.UniqueConstraint(fields=["rule", "version"], name="uniq_mapping_version")]

    def __str__(self):
        return f"rule {self.rule_id} v{self.version} {self.action}"


class MappingRun(models.Model):
    """One application of a rule version to the documents it affects (progress for the screen)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    rule = models.ForeignKey(MappingRule, on_delete=models.CASCADE, related_name="runs")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="Documents to re-validate")
    done = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0, help_text="Exception items resolved")
    queued_for_posting = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"rule {self.rule_id} v{self.version}: {self.status}"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, int(self.done * 100 / self.total))
