"""Roles, their permissions, and entity scope: the one place that says who may do what, where.

Roles are Django groups; `roles_sync()` (run after every migrate) gives each exactly the
permissions listed here, so a permission granted by hand in the admin to a role group does not
survive — roles are code-reviewed, people's memberships are data. Entity scope reads `UserScope`.
Screens and the API enforce both on the server (`workbench/web/access.py`); templates only mirror.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from workbench.models.access import UserScope
from workbench.models.exceptions import ExceptionItem

APP = "workbench"

ANALYST = "Finance analysts"
MANAGER = "Finance managers"
ENGINEER = "Integration engineers"
ADMIN = "Administrators"
AUDITOR = "Auditors"
CALLOUT = "Integration: requisition validation"
SUBMITTER = "Integration: document submission"
APPROVAL_ENGINE = "Integration: approval engine"

VIEW = f"{APP}.view_workbench"
WORK_BUSINESS = f"{APP}.work_business_items"
WORK_TECHNICAL = f"{APP}.work_technical_items"
APPROVE = f"{APP}.approve_overrides"
OPERATE = f"{APP}.operate_sync"
CONFIGURE = f"{APP}.configure"
AUDIT = f"{APP}.read_audit"
VALIDATE = f"{APP}.validate_requisitions"
SUBMIT = f"{APP}.submit_documents"
DECIDE = f"{APP}.decide_approvals"

# Django's own model permissions the admin site needs for people and roles (admins only).
_ADMIN_SITE = [
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "auth.view_group",
    f"{APP}.view_userscope",
    f"{APP}.add_userscope",
    f"{APP}.change_userscope",
    f"{APP}.view_apitoken",
    f"{APP}.add_apitoken",
    f"{APP}.change_apitoken",
    f"{APP}.view_connection",
    f"{APP}.change_connection",
]

ROLES: dict[str, list[str]] = {
    ANALYST: [VIEW, WORK_BUSINESS],
    MANAGER: [VIEW, WORK_BUSINESS, APPROVE],
    ENGINEER: [VIEW, WORK_TECHNICAL, OPERATE],
    ADMIN: [VIEW, CONFIGURE, OPERATE, AUDIT, *_ADMIN_SITE],
    AUDITOR: [VIEW, AUDIT],
    CALLOUT: [VALIDATE],
    SUBMITTER: [VALIDATE, SUBMIT],
    APPROVAL_ENGINE: [DECIDE],
}


def _permissions(names: list[str]) -> list[Permission]:
    query = Q(pk__in=[])
    for name in names:
        app, codename = name.split(".")
        query |= Q(content_type__app_label=app, codename=codename)
    found = list(Permission.objects.filter(query))
    if len(found) != len(set(names)):
        have = {f"{p.content_type.app_label}.{p.codename}" for p in found}
        raise LookupError(f"unknown permissions for roles: {sorted(set(names) - have)}")
    return found


def roles_sync() -> None:
    """Create the role groups and give each exactly its permissions (idempotent)."""
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(_permissions(perms))


def role_names(user) -> list[str]:
    return [g.name for g in user.groups.all() if g.name in ROLES]


# --- entity scope -------------------------------------------------------------------------------


def entity_ids(user) -> set[int] | None:
    """The legal entities this account works on: None means all of them; an empty set, none.

    Cached on the user object for the request: the queue asks several times per page.
    """
    cached = getattr(user, "_entity_ids", False)
    if cached is not False:
        return cached
    if not user.is_authenticated or not user.is_active:
        ids: set[int] | None = set()
    elif user.is_superuser:
        ids = None
    else:
        from_scope = UserScope.objects.filter(user=user).first()
        if from_scope is None:
            ids = set()
        elif from_scope.all_entities:
            ids = None
        else:
            ids = set(from_scope.entities.values_list("pk", flat=True))
    user._entity_ids = ids
    return ids


def in_scope(qs, user, field: str = "entity"):
    """`qs` narrowed to the account's entities. Rows with no entity (an unknown entity code, a
    connection outage) are shown only to accounts that work on all entities: nothing that cannot
    be tied to one of yours is shown."""
    ids = entity_ids(user)
    if ids is None:
        return qs
    return qs.filter(**{f"{field}__in": ids})


def entity_allowed(user, entity_id) -> bool:
    ids = entity_ids(user)
    return ids is None or (entity_id is not None and entity_id in ids)


def may_work(user, item: ExceptionItem) -> bool:
    """Finance items are the analysts' and managers' work; technical ones the integration engineers'."""
    need = WORK_TECHNICAL if item.kind == ExceptionItem.Kind.TECHNICAL else WORK_BUSINESS
    return user.has_perm(need)
