"""Who may act on which legal entity, and the API tokens integration clients hold.

Roles are Django groups holding the permissions below (`workbench/roles.py` keeps them in step).
An account's `UserScope` names the legal entities it works on; an account without one sees no
entity's data (fail closed). Tokens are stored as SHA-256 digests: the clear key is shown once.
"""

import hashlib
import secrets

from django.conf import settings
from django.db import models


class UserScope(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, related_name="scope", on_delete=models.PROTECT)
    all_entities = models.BooleanField(default=False, help_text="Works on every legal entity, present and future.")
    entities = models.ManyToManyField("workbench.LegalEntity", blank=True, related_name="+")
    # Set by single sign-on: claims replace roles and entities at each sign-in.
    managed_by_sso = models.BooleanField(default=False)

    class Meta:
        verbose_name = "entity scope"
        permissions = [
            ("view_workbench", "See the queue, documents and screens (within entity scope)"),
            ("work_business_items", "Triage, correct, retry, send back and override finance items"),
            ("work_technical_items", "Triage, retry and replay technical (integration) items"),
            ("approve_overrides", "Approve overrides and variances above an analyst's authority"),
            ("operate_sync", "Run sync now, reconcile, replay, see connections"),
            ("configure", "Change mapping rules, approval settings, schedules, policies and ownership"),
            ("read_audit", "Read and export the audit trail and the overrides report"),
            ("validate_requisitions", "Integration client: validate requisitions and check budgets"),
            ("submit_documents", "Integration client: create requisitions, POs and e-invoices through the API"),
            ("decide_approvals", "Approval engine: record decisions of the approvers it authenticated"),
        ]

    def __str__(self):
        return f"{self.user} scope"


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """An integration client's key: only its digest is stored; `prefix` lets people tell keys apart."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="api_tokens", on_delete=models.PROTECT)
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user", "name"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user, name: str, key: str = "") -> tuple["ApiToken", str]:
        """A new token and its clear key (shown once). `key` is for sandboxes' fixed demo keys."""
        key = key or secrets.token_urlsafe(32)
        return cls.objects.create(user=user, name=name, digest=token_digest(key), prefix=key[:8]), key
