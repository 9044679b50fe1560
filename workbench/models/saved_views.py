"""Saved views: a person's named queue filters, kept as the queue's query string (filters only, never
rows: whoever opens a view still sees only their own entities). A view may be shared with one role
group its owner belongs to; admins pick the view each role opens the queue on.
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone


class SavedView(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=2000, blank=True, help_text="The queue's query string (filters only)")
    shared_with = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="A team that sees it too"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="saved_view_name_per_owner")]

    def __str__(self):
        return self.name


class RoleDefaultView(models.Model):
    """The view a role's members open `/queue/` on (no query string); one per role, set by admins."""

    role = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="default_view")
    view = models.ForeignKey(SavedView, on_delete=models.CASCADE, related_name="default_for")
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    set_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.role}: {self.view}"
