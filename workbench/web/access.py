"""Who may call which URL: one table, enforced on the server for screens, HTMX endpoints and the API.

Every named URL has a row: for each HTTP method, the permissions of which an account needs any one.
A URL without a row answers 403 to everyone (fail closed), and `tests/web/test_permission_matrix.py`
fails until the row is written. Entity scope is the views' business (`workbench.roles.in_scope`):
an object outside the account's entities answers 404, as if it did not exist.
"""

from django.http import HttpResponseForbidden, HttpResponseNotAllowed
from django.template.loader import render_to_string

from workbench.roles import (
    APPROVE,
    AUDIT,
    CONFIGURE,
    DECIDE,
    OPERATE,
    SUBMIT,
    VALIDATE,
    VIEW,
    WORK_BUSINESS,
    WORK_TECHNICAL,
)

PUBLIC = "public"  # no sign-in (the login page, health check)
SIGNED_IN = "signed-in"  # any active account (sign out, change own password)
DJANGO_ADMIN = "django-admin"  # Django's admin site: staff flag plus model permissions, checked by the site

WORK = (WORK_BUSINESS, WORK_TECHNICAL)  # which of the two is checked against the item's kind in the view
READ_CONFIG = (CONFIGURE, AUDIT)
# Comments and watching: every working role (any item kind); auditors read the thread only.
DISCUSS = (WORK_BUSINESS, WORK_TECHNICAL, CONFIGURE)

ACCESS: dict[str, dict[str, tuple[str, ...] | str]] = {
    "home": {"GET": (VIEW,)},
    "healthz": {"GET": PUBLIC},
    "login": {"GET": PUBLIC, "POST": PUBLIC},
    "logout": {"POST": SIGNED_IN},
    "password_change": {"GET": SIGNED_IN, "POST": SIGNED_IN},
    "password_change_done": {"GET": SIGNED_IN},
    "password_reset": {"GET": PUBLIC, "POST": PUBLIC},
    "password_reset_done": {"GET": PUBLIC},
    "password_reset_confirm": {"GET": PUBLIC, "POST": PUBLIC},
    "password_reset_complete": {"GET": PUBLIC},
    "oidc_authentication_init": {"GET": PUBLIC},
    "oidc_authentication_callback": {"GET": PUBLIC},
    "oidc_logout": {"POST": SIGNED_IN},
    # queue and items
    "queue:list": {"GET": (VIEW,)},
    "queue:bulk_assign": {"POST": WORK},
    "queue:bulk_preview": {"POST": WORK},  # each item's kind of work is checked per item (skipped, not refused)
    "queue:bulk_run": {"POST": WORK},
    # exports: the rows the screen shows the person (scope checked in the source); saved views are one's own
    "queue:export_csv": {"GET": (VIEW,)},
    "queue:export_xlsx": {"GET": (VIEW,)},
    "queue:view_save": {"POST": (VIEW,)},
    "queue:view_delete": {"POST": (VIEW,)},
    "queue:view_default": {"POST": (CONFIGURE,)},
    "documents:export_csv": {"GET": (VIEW,)},
    "documents:export_xlsx": {"GET": (VIEW,)},
    "p2p:accruals_export_csv": {"GET": (VIEW,)},
    "p2p:accruals_export_xlsx": {"GET": (VIEW,)},
    "p2p:budgets_export_csv": {"GET": (VIEW,)},
    "p2p:budgets_export_xlsx": {"GET": (VIEW,)},
    "audit:overrides_export_csv": {"GET": (AUDIT, APPROVE)},
    "audit:overrides_export_xlsx": {"GET": (AUDIT, APPROVE)},
    "items:detail": {"GET": (VIEW,)},
    "items:progress": {"GET": (VIEW,)},
    "items:correct": {"POST": WORK},
    "items:override": {"POST": WORK},
    "items:override_decide": {"POST": (APPROVE,)},
    "items:retry": {"POST": WORK},
    "items:send_back": {"POST": WORK},
    "items:assign": {"POST": WORK},
    "items:snooze": {"POST": WORK},
    "items:wake": {"POST": WORK},
    "items:evidence": {"POST": WORK},
    "items:accept_variance": {"POST": (WORK_BUSINESS,)},
    "items:credit_note": {"POST": (WORK_BUSINESS,)},
    "items:route": {"POST": (WORK_BUSINESS,)},
    "items:reject_invoice": {"POST": (WORK_BUSINESS,)},
    # drift fixes: the item's kind of work (checked in the view), or an admin's
    "items:pull_again": {"POST": (*WORK, CONFIGURE)},
    "items:accept_erp": {"POST": (*WORK, CONFIGURE)},
    "items:repost": {"POST": (*WORK, CONFIGURE)},
    "documents:detail": {"GET": (VIEW,)},
    "documents:list": {"GET": (VIEW,)},
    "search": {"GET": (VIEW,)},  # find a document by any id (scoped in the selector)
    # working together: anyone who sees the object reads the thread (on its page); working roles post and watch
    "items:comment": {"POST": DISCUSS},
    "items:watch": {"POST": DISCUSS},
    "documents:comment": {"POST": DISCUSS},
    "documents:watch": {"POST": DISCUSS},
    # a person's own inbox (another's message answers 404 in the view)
    "inbox:list": {"GET": SIGNED_IN},
    "inbox:read": {"POST": SIGNED_IN},
    "inbox:read_all": {"POST": SIGNED_IN},
    "inbox:settings": {"GET": SIGNED_IN, "POST": SIGNED_IN},
    "dashboard:page": {"GET": (VIEW,)},  # KPIs, scoped to the account's entities
    "evidence:download": {"GET": (VIEW,)},
    # background jobs: only the person who asked sees one (checked in the view)
    "jobs:detail": {"GET": SIGNED_IN},
    "jobs:progress": {"GET": SIGNED_IN},
    "jobs:download": {"GET": SIGNED_IN},
    # alerts: admins edit rules; managers and engineers read them and the history
    "alerts:page": {"GET": (CONFIGURE, APPROVE, OPERATE)},
    "alerts:rule_new": {"GET": (CONFIGURE,), "POST": (CONFIGURE,)},
    "alerts:rule_edit": {"GET": (CONFIGURE,), "POST": (CONFIGURE,)},
    "alerts:evaluate": {"POST": (CONFIGURE, OPERATE)},
    # close timetable: everyone sees their entities' calendars; administrators change them
    "close:page": {"GET": (VIEW,)},
    "close:entity": {"GET": (VIEW,)},
    "close:calendar_save": {"POST": (CONFIGURE,)},
    "close:day_add": {"POST": (CONFIGURE,)},
    "close:day_remove": {"POST": (CONFIGURE,)},
    "close:period_save": {"POST": (CONFIGURE,)},
    # sync and operations
    "sync:page": {"GET": (VIEW,)},
    "sync:run_now": {"POST": (OPERATE,)},
    "sync:run_progress": {"GET": (VIEW,)},
    "sync:schedules": {"GET": (OPERATE, *READ_CONFIG)},
    "sync:schedule_save": {"POST": (CONFIGURE,)},
    "sync:reconciliation": {"GET": (VIEW,)},
    "sync:reconciliation_run": {"GET": (VIEW,)},
    "sync:reconciliation_progress": {"GET": (VIEW,)},
    "sync:reconcile_now": {"POST": (OPERATE,)},
    "sync:reconciliation_retention": {"POST": (CONFIGURE,)},
    # procure to pay
    "p2p:accruals": {"GET": (VIEW,)},
    "p2p:accrual_post": {"POST": (APPROVE,)},  # finance managers book the period's accrual in the ERP
    "p2p:budgets": {"GET": (VIEW,)},
    "p2p:settings": {"GET": READ_CONFIG},
    "p2p:rule_add": {"POST": (CONFIGURE,)},
    "p2p:rule_edit": {"POST": (CONFIGURE,)},
    "p2p:delegation_add": {"POST": (CONFIGURE,)},
    "p2p:tolerance_add": {"POST": (CONFIGURE,)},
    "p2p:tolerance_edit": {"POST": (CONFIGURE,)},
    "p2p:einvoices": {"GET": (VIEW,), "POST": (WORK_BUSINESS,)},
    # configuration
    "mappings:list": {"GET": READ_CONFIG},
    "mappings:edit": {"GET": READ_CONFIG},
    "mappings:test": {"POST": (CONFIGURE,)},
    "mappings:test_existing": {"POST": (CONFIGURE,)},
    "mappings:save": {"POST": (CONFIGURE,)},
    "mappings:save_existing": {"POST": (CONFIGURE,)},
    "mappings:run": {"GET": READ_CONFIG},
    "suppliers:list": {"GET": (VIEW,)},
    "suppliers:confirm": {"POST": (CONFIGURE,)},
    "suppliers:reject": {"POST": (CONFIGURE,)},
    "masterdata:page": {"GET": (VIEW,)},
    "masterdata:owner": {"POST": (CONFIGURE,)},
    "masterdata:keep": {"POST": (CONFIGURE,)},
    "governance:policies": {"GET": READ_CONFIG},
    "governance:policy_save": {"POST": (CONFIGURE,)},
    "governance:reason_save": {"POST": (CONFIGURE,)},
    # audit
    "audit:overrides": {"GET": (AUDIT, APPROVE)},
    "audit:trail": {"GET": (AUDIT,)},
    "audit:export": {"GET": (AUDIT,)},
    # API (DRF checks these through TablePermission, after token or session authentication)
    "api-root": {"GET": (VIEW,)},
    "schema": {"GET": (VIEW,)},
    "api-docs": {"GET": (VIEW,)},
    "exception-list": {"GET": (VIEW,)},
    "exception-detail": {"GET": (VIEW,)},
    "exception-export": {"GET": (VIEW,)},  # CSV of the filtered list, scoped like it
    "exception-assign": {"POST": WORK},
    "exception-snooze": {"POST": WORK},
    "exception-correct": {"POST": WORK},
    "exception-override": {"POST": WORK},
    "exception-retry": {"POST": WORK},
    "exception-send-back": {"POST": WORK},
    "exception-comments": {"GET": (VIEW,), "POST": DISCUSS},
    "document-list": {"GET": (VIEW,)},
    "document-detail": {"GET": (VIEW,)},
    "document-find": {"GET": (VIEW,)},
    "kpis": {"GET": (VIEW,)},
    "p2p-requisition-validate": {"POST": (VALIDATE, VIEW)},  # a read-only check: clients and people
    "p2p-budget-check": {"POST": (VALIDATE, VIEW)},
    "p2p-requisition-create": {"POST": (SUBMIT,)},
    "p2p-po-create": {"POST": (SUBMIT,)},
    "p2p-einvoice": {"POST": (SUBMIT, WORK_BUSINESS)},
    "p2p-invoice-status": {"GET": (VIEW,)},
    "p2p-approval-decision": {"POST": (DECIDE, VIEW)},
}

# Django's admin site has dozens of URLs and guards them itself (staff flag, model permissions).
PREFIX_RULES = {"admin:": DJANGO_ADMIN}


def rule_for(view_name: str) -> dict | str | None:
    for prefix, rule in PREFIX_RULES.items():
        if view_name.startswith(prefix):
            return rule
    return ACCESS.get(view_name)


def allowed(user, view_name: str, method: str) -> bool | None:
    """True or False; None when the method has no row (the caller answers 405)."""
    rule = rule_for(view_name)
    if rule is None:
        return False
    if rule == DJANGO_ADMIN:
        # The site checks model permissions itself; people without the staff flag get our plain
        # answer rather than the admin's own login page (which would ask them to sign in again).
        return view_name in ("admin:login", "admin:logout") or (user.is_authenticated and user.is_staff)
    method = "GET" if method in ("HEAD", "OPTIONS") else method
    need = rule.get(method)
    if need is None:
        return None
    if need == PUBLIC:
        return True
    if not (user.is_authenticated and user.is_active):
        return False
    if need == SIGNED_IN:
        return True
    return any(user.has_perm(p) for p in need)


def methods_of(view_name: str) -> list[str]:
    rule = rule_for(view_name)
    return list(rule) if isinstance(rule, dict) else []


def _is_api(view_func) -> bool:
    # DRF's views (APIView, viewsets, @api_view) carry their class and its permission_classes.
    return hasattr(getattr(view_func, "cls", None), "permission_classes")


def forbidden(request, what: str = "") -> HttpResponseForbidden:
    body = render_to_string(
        "workbench/forbidden.html", {"what": what or "Your role does not include this."}, request=request
    )
    return HttpResponseForbidden(body)


class AccessMiddleware:
    """Screens and HTMX endpoints: the table above, before the view runs.

    API views are left to `TablePermission`, because DRF authenticates tokens inside the view.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if _is_api(view_func):
            return None
        name = request.resolver_match.view_name if request.resolver_match else ""
        verdict = allowed(request.user, name, request.method)
        if verdict is None:
            return HttpResponseNotAllowed(methods_of(name))
        if not verdict:
            return forbidden(request)
        return None
