"""Saved views: save, share, delete a person's queue filters, and set the view a role opens on.

A view stores only filter parameters, cleaned through the queue's own FilterSet: an unknown
parameter is dropped, an invalid value refused with the form's words. Rows are never stored.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.http import QueryDict
from django.utils import timezone

from workbench import roles
from workbench.errors import WorkbenchError
from workbench.filters import ExceptionItemFilter
from workbench.models import ExceptionItem, RoleDefaultView, SavedView
from workbench.selectors.saved_views import PEOPLE_ROLES

MAX_QUERY = 2000
MAX_VIEWS = 200  # per person: a menu, not a database


def saved_view_query(query: str, *, user) -> str:
    """The queue filters in `query` as a clean query string: filter parameters only, blanks dropped."""
    if "\x00" in (query or ""):
        raise WorkbenchError("The filters hold a NUL character.")
    if len(query or "") > MAX_QUERY:
        raise WorkbenchError(f"These filters are too long to save (over {MAX_QUERY} characters).")
    given = QueryDict(query or "")
    data = QueryDict(mutable=True)
    for key in ExceptionItemFilter.base_filters:
        for value in given.getlist(key):
            if value.strip():
                data.appendlist(key, value.strip())
    filterset = ExceptionItemFilter(data, queryset=ExceptionItem.objects.none(), request=SimpleNamespace(user=user))
    if not filterset.is_valid():
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in filterset.errors.items())
        raise WorkbenchError(f"These filters cannot be saved: {problems}")
    return data.urlencode()


def _team(owner, shared_with: str | Group | None) -> Group | None:
    if not shared_with:
        return None
    name = shared_with.name if isinstance(shared_with, Group) else str(shared_with)
    if name not in roles.role_names(owner):
        raise WorkbenchError("A view can be shared only with a team you belong to.")
    return Group.objects.get(name=name)


@transaction.atomic(durable=True)
def saved_view_save(*, owner, name: str, query: str, shared_with: str | Group | None = None) -> SavedView:
    """Save (or overwrite, by name) one of the owner's views."""
    name = (name or "").strip()
    if not name or "\x00" in name or len(name) > 80:
        raise WorkbenchError("Give the view a name of 1 to 80 characters.")
    clean = saved_view_query(query, user=owner)
    team = _team(owner, shared_with)
    existing = SavedView.objects.filter(owner=owner, name=name).first()
    if existing is None and SavedView.objects.filter(owner=owner).count() >= MAX_VIEWS:
        raise WorkbenchError(f"You have {MAX_VIEWS} saved views already: delete one first.")
    if existing:
        existing.query, existing.shared_with = clean, team
        existing.save(update_fields=["query", "shared_with", "updated_at"])
        return existing
    try:
        return SavedView.objects.create(owner=owner, name=name, query=clean, shared_with=team)
    except IntegrityError as exc:  # the same name saved twice at once
        raise WorkbenchError("A view with this name was just saved: try again.") from exc


@transaction.atomic(durable=True)
def saved_view_delete(*, view: SavedView, actor) -> None:
    if view.owner_id != actor.pk:
        raise WorkbenchError("Only its owner can delete a view.")
    view.delete()


@transaction.atomic(durable=True)
def role_default_view_set(*, role: str, view: SavedView | None, actor) -> RoleDefaultView | None:
    """The view members of `role` open the queue on (None: the plain queue)."""
    if role not in PEOPLE_ROLES:
        raise WorkbenchError(f"Unknown role {role[:80]!r}.")
    group = Group.objects.get(name=role)
    if view is None:
        RoleDefaultView.objects.filter(role=group).delete()
        return None
    default, _ = RoleDefaultView.objects.update_or_create(
        role=group, defaults={"view": view, "set_by": actor, "set_at": timezone.now()}
    )
    return default
