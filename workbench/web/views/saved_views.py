"""Saved views on the queue: save the current filters under a name (optionally for a team), delete one's
own, and (admins) pick the view a role opens the queue on. Opening a view is a plain queue link."""

from django.contrib import messages
from django.db.models import prefetch_related_objects
from django.http import Http404, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from workbench import roles
from workbench.errors import WorkbenchError
from workbench.selectors.saved_views import PEOPLE_ROLES, role_default_views, saved_view_get, saved_view_list
from workbench.services.saved_views import role_default_view_set, saved_view_delete, saved_view_save


def _queue(query: str = ""):
    return redirect(f"{reverse('queue:list')}?{query}" if query else reverse("queue:list"))


@require_POST
def view_save(request):
    try:
        view = saved_view_save(
            owner=request.user,
            name=request.POST.get("name", ""),
            query=request.POST.get("query", ""),
            shared_with=request.POST.get("shared_with", ""),
        )
    except WorkbenchError as exc:
        messages.error(request, str(exc))
        return _queue(request.POST.get("query", "")[:2000].replace("\x00", ""))
    shared = f", shared with {view.shared_with.name}" if view.shared_with else ""
    messages.success(request, f"Saved the view “{view.name}”{shared}.")
    return _queue(view.query)


@require_POST
def view_delete(request, pk):
    view = saved_view_get(request.user, pk)
    if view is None:
        raise Http404("No such view")
    try:
        saved_view_delete(view=view, actor=request.user)
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Deleted the view “{view.name}”.")
    return _queue("all=1")


@require_POST
def view_default(request):
    """An admin makes one of the views they see the default of a role (or clears it)."""
    pk = request.POST.get("view", "")
    view = saved_view_get(request.user, int(pk)) if pk.isdecimal() and len(pk) < 12 else None
    if pk and view is None:
        raise Http404("No such view")
    role = request.POST.get("role", "")[:150]
    try:
        role_default_view_set(role=role, view=view, actor=request.user)
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        what = f"“{view.name}”" if view else "the plain queue"
        messages.success(request, f"{role} now open the queue on {what}.")
    return _queue("all=1")


def saved_views_context(request, default_view) -> dict:
    """What the queue's Views menu needs: my views and my teams', my teams, and (admins) the role defaults."""
    # The page header lists the same groups: loaded once here, they serve the menu and the header.
    prefetch_related_objects([request.user], "groups")
    views = list(saved_view_list(request.user))
    shown = _pairs(request.GET) if request.GET else _pairs(QueryDict(default_view.query if default_view else ""))
    current = next((v for v in views if _pairs(QueryDict(v.query)) == shown), None)
    can_configure = request.user.has_perm(roles.CONFIGURE)
    return {
        "saved_views": views,
        "default_view": default_view,
        "current_view": current,
        "my_teams": roles.role_names(request.user),
        "role_defaults": [(r, role_default_views().get(r)) for r in PEOPLE_ROLES] if can_configure else [],
    }


def _pairs(query) -> set:
    """A query's filter values, blanks and paging aside: the same filters in another order are the same view."""
    return {(k, v) for k in query for v in query.getlist(k) if v and k not in ("page", "view", "all")}
