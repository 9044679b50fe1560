"""Reads for working together: who can see an object, its comment thread and watchers, a person's inbox."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Case, IntegerField, Q, Value, When

from workbench import roles
from workbench.models import Comment, Notification, NotificationPreference, Watch

_APP, _VIEW = roles.VIEW.split(".")


def people_who_see(*, entity_id: int | None, among=None):
    """Active people whose role may view the workbench and whose entity scope holds `entity_id`
    (an object with no entity is seen only by those who work on every entity), as `roles.in_scope` does."""
    view = (
        Q(is_superuser=True)
        | Q(groups__permissions__codename=_VIEW, groups__permissions__content_type__app_label=_APP)
        | Q(user_permissions__codename=_VIEW, user_permissions__content_type__app_label=_APP)
    )
    scope = Q(is_superuser=True) | Q(scope__all_entities=True)
    if entity_id is not None:
        scope |= Q(scope__entities=entity_id)
    qs = get_user_model().objects.filter(is_active=True)
    if among is not None:
        qs = qs.filter(among)
    # The permission and scope joins can repeat a person; ids first keeps DISTINCT cheap.
    ids = qs.filter(view).filter(scope).values("pk").distinct()
    return get_user_model().objects.filter(pk__in=ids)


def entity_of(*, item=None, document=None) -> int | None:
    return item.entity_id if item is not None else document.entity_id


def comment_thread(*, item=None, document=None) -> list[Comment]:
    """The latest version of each comment, oldest first; an edited one knows it was edited."""
    qs = Comment.objects.filter(item=item) if item is not None else Comment.objects.filter(document=document)
    rows = list(qs.select_related("actor").order_by("at", "id"))
    replaced = {c.replaces_id for c in rows if c.replaces_id}
    first_at = {}
    for c in rows:  # an edit chain keeps the place of its first version in the thread
        first_at[c.pk] = first_at.get(c.replaces_id, c.at) if c.replaces_id else c.at
        c.edited = c.replaces_id is not None
    latest = [c for c in rows if c.pk not in replaced]
    return sorted(latest, key=lambda c: (first_at[c.pk], c.pk))


def watchers(*, item=None, document=None) -> list:
    qs = Watch.objects.filter(item=item) if item is not None else Watch.objects.filter(document=document)
    return [w.user for w in qs.select_related("user").order_by("user__username")]


def inbox_list(user):
    """Unread first, then newest first."""
    unread = Case(When(read_at__isnull=True, then=Value(0)), default=Value(1), output_field=IntegerField())
    return Notification.objects.filter(recipient=user).order_by(unread, "-created_at", "-id")


def inbox_unread_count(user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def email_preference(user) -> str:
    pref = NotificationPreference.objects.filter(user=user).values_list("email", flat=True).first()
    return pref or NotificationPreference.Email.IMMEDIATELY
