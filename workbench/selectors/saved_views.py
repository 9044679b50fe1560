"""Which saved views a person sees (theirs and their teams'), and the one their role opens on."""

from django.db.models import Q

from workbench import roles
from workbench.models import RoleDefaultView, SavedView

# The roles people hold (integration tokens' roles have no queue to open).
PEOPLE_ROLES = (roles.ANALYST, roles.MANAGER, roles.ENGINEER, roles.ADMIN, roles.AUDITOR)


def saved_view_list(user):
    """Mine, then those shared with a team I belong to."""
    teams = [g.pk for g in user.groups.all()]
    return (
        SavedView.objects.filter(Q(owner=user) | Q(shared_with__in=teams))
        .select_related("owner", "shared_with")
        .order_by("name", "id")
    )


def saved_view_get(user, pk) -> SavedView | None:
    return saved_view_list(user).filter(pk=pk).first()


def role_default_view(user) -> SavedView | None:
    """The default view of the first of my roles (in the order roles.ROLES lists them) that has one."""
    mine = roles.role_names(user)
    defaults = {
        d.role.name: d.view for d in RoleDefaultView.objects.filter(role__name__in=mine).select_related("role", "view")
    }
    return next((defaults[r] for r in roles.ROLES if r in defaults), None)


def role_default_views() -> dict[str, SavedView]:
    return {d.role.name: d.view for d in RoleDefaultView.objects.select_related("role", "view")}
