"""Idempotent demo set-up: the two logins, the connections to the sandboxes, the beat schedules."""

import os
from datetime import time
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.utils import timezone

from connectors.sandboxkit.kit import Sandbox
from connectors.scim.sandbox.oidc import TENANT_ID
from sync.schedules import ensure_schedules
from workbench import roles
from workbench.models import (
    AlertRule,
    ApiToken,
    ApprovalRule,
    BusinessCalendar,
    Connection,
    LegalEntity,
    MatchTolerance,
    UserScope,
)
from workbench.models.alerts import Condition
from workbench.services.alerts import alert_rule_save
from workbench.services.calendars import business_calendar_save
from workbench.services.overrides import override_defaults

# Demo logins: password = user name. (username, first, last, role, entity codes or None for all, staff)
DEMO_USERS = [
    ("analyst", "Alex", "Analyst", roles.ANALYST, None, False),
    ("analyst.de", "Anna", "Schmidt", roles.ANALYST, ["NW-DE"], False),
    ("manager", "Morgan", "Manager", roles.MANAGER, None, False),
    ("engineer", "Emil", "Engineer", roles.ENGINEER, None, False),
    ("auditor", "Aud", "Itor", roles.AUDITOR, None, False),
    ("admin", "Ada", "Admin", roles.ADMIN, None, True),
]
# The German entity may not be pulled from the ERP yet: its row is made now, the pull fills it in.
ENTITY_STUBS = {"NW-DE": ("Northwind Handels GmbH", "EUR")}


# The demo entities' business calendars (the ERP pull fills in the rest of each entity): SLAs and
# close dates skip their weekends and public holidays.
DEMO_CALENDARS = {
    "NW-US": ("Northwind Traders Inc.", "USD", "US", "America/New_York"),
    "NW-DE": ("Northwind Handels GmbH", "EUR", "DE", "Europe/Berlin"),
}


def demo_calendars() -> int:
    """Each demo entity gets its country's calendar once; an admin's later edits are kept."""
    made = 0
    for code, (name, currency, country, tz) in DEMO_CALENDARS.items():
        entity, _ = LegalEntity.objects.get_or_create(code=code, defaults={"name": name, "currency": currency})
        if BusinessCalendar.objects.filter(entity=entity).exists():
            continue
        business_calendar_save(
            entity=entity, actor=None, time_zone=tz, weekdays=[0, 1, 2, 3, 4], work_start=time(9), work_end=time(17),
            country=country,
        )  # fmt: skip
        made += 1
    return made


def demo_alert_rules() -> int:
    """Two rules an on-call engineer and a controller would set first (in-app only; admins add chat)."""
    engineers, managers = Group.objects.get(name=roles.ENGINEER), Group.objects.get(name=roles.MANAGER)
    rules = [
        {"name": "ERP down for 5 minutes", "condition": Condition.CONNECTION_DOWN, "minutes": 5,
         "target": AlertRule.Target.ROLE, "target_role": engineers},
        {"name": "Period closes within 24 hours", "condition": Condition.CLOSE_RISK, "hours": 24,
         "target": AlertRule.Target.ROLE, "target_role": managers},
    ]  # fmt: skip
    made = 0
    for values in rules:
        if not AlertRule.objects.filter(name=values["name"]).exists():
            alert_rule_save(values=values, actor=None)
            made += 1
    return made


def demo_users() -> list[str]:
    users = get_user_model()
    made = []
    for username, first, last, role, entities, staff in DEMO_USERS:
        user, created = users.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@northwind.example"},
        )
        if created:
            user.set_password(username)  # demo only: validators apply to passwords people choose
            user.is_staff = staff
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            scope = UserScope.objects.create(user=user, all_entities=entities is None)
            for code in entities or []:
                name, currency = ENTITY_STUBS[code]
                entity, _ = LegalEntity.objects.get_or_create(code=code, defaults={"name": name, "currency": currency})
                scope.entities.add(entity)
            made.append(username)
    return made


def sandbox_connections(
    erp_port: int,
    expense_port: int,
    procurement_port: int = 8103,
    approvals_port: int = 8104,
    identity_port: int = 8105,
) -> list[dict]:
    creds = {"client_id": Sandbox.client_id, "client_secret": Sandbox.client_secret}
    return [
        {
            "name": "Business Central (ERP)",
            "kind": "business_central",
            "role": Connection.Role.ERP,
            "config": {"base_url": f"http://127.0.0.1:{erp_port}", "environment": "sandbox", **creds},
        },
        {
            "name": "Concur Expense",
            "kind": "concur",
            "role": Connection.Role.EXPENSE,
            "config": {"base_url": f"http://127.0.0.1:{expense_port}", **creds},
        },
        {
            "name": "Coupa Procurement",
            "kind": "coupa",
            "role": Connection.Role.PROCUREMENT,
            "config": {"base_url": f"http://127.0.0.1:{procurement_port}", **creds},
        },
        {
            "name": "ServiceNow Approvals",
            "kind": "servicenow",
            "role": Connection.Role.APPROVALS,
            "config": {"base_url": f"http://127.0.0.1:{approvals_port}", **creds},
        },
        # Entra-style provisioning uses one static bearer token; the sandbox accepts this one.
        {
            "name": "Entra ID directory (SCIM)",
            "kind": "scim",
            "role": Connection.Role.IDENTITY,
            "config": {"base_url": f"http://127.0.0.1:{identity_port}", "token": "sandbox-scim-token"},
        },
    ]


def sso_demo_env(identity_port: int, environ=os.environ) -> dict[str, str]:
    """Single sign-on against the identity sandbox (its OpenID Connect side), unless the environment
    already names an identity provider (OIDC_RP_CLIENT_ID set): then that one is used, as set."""
    if environ.get("OIDC_RP_CLIENT_ID"):
        return {}
    return {
        "OIDC_RP_CLIENT_ID": Sandbox.client_id,
        "OIDC_RP_CLIENT_SECRET": Sandbox.client_secret,
        "OIDC_OP_DISCOVERY_URL": f"http://127.0.0.1:{identity_port}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
    }


def p2p_defaults() -> None:
    """Approval thresholds and match tolerances an admin starts from (only when none exist)."""
    if not ApprovalRule.objects.exists():
        for amount, levels in ((0, 1), (10000, 2), (50000, 3)):
            ApprovalRule.objects.create(min_amount=Decimal(amount), levels=levels, sla_hours=48)
    if not MatchTolerance.objects.exists():
        MatchTolerance.objects.create(
            entity=None, price_pct=Decimal(2), qty_abs=Decimal(0), amount_abs=Decimal(25), accept_limit=Decimal(1000)
        )


def callout_token() -> str:
    """A fresh API token for the procurement suite's Call Out: it may only validate requisitions.

    Keys are stored hashed, so each demo start issues a new one (and revokes the last).
    """
    user, created = get_user_model().objects.get_or_create(
        username="procurement-callout", defaults={"first_name": "Coupa", "last_name": "Call Out"}
    )
    if created:
        user.set_unusable_password()
        user.save()
        user.groups.set([Group.objects.get(name=roles.CALLOUT)])
    ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    return ApiToken.issue(user, "Coupa Call Out")[1]


class Command(BaseCommand):
    help = "Create demo users (password = user name), sandbox connections and schedules (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--erp-port", type=int, default=int(os.getenv("SANDBOX_ERP_PORT", "8101")))
        parser.add_argument("--expense-port", type=int, default=int(os.getenv("SANDBOX_EXPENSE_PORT", "8102")))
        parser.add_argument("--procurement-port", type=int, default=int(os.getenv("SANDBOX_PROCUREMENT_PORT", "8103")))
        parser.add_argument("--approvals-port", type=int, default=int(os.getenv("SANDBOX_APPROVALS_PORT", "8104")))
        parser.add_argument("--identity-port", type=int, default=int(os.getenv("SANDBOX_IDENTITY_PORT", "8105")))

    def handle(self, *args, **opts):
        demo_users()
        demo_calendars()
        demo_alert_rules()
        p2p_defaults()
        override_defaults()
        for spec in sandbox_connections(
            opts["erp_port"],
            opts["expense_port"],
            opts["procurement_port"],
            opts["approvals_port"],
            opts["identity_port"],
        ):
            conn, created = Connection.objects.get_or_create(name=spec["name"], defaults=spec)
            if not created and conn.config.get("base_url") != spec["config"]["base_url"]:
                # Ports moved (PORT-style overrides): follow them, keep the admin's other settings.
                conn.config = {**conn.config, "base_url": spec["config"]["base_url"]}
                conn.save(update_fields=["config"])
        n = ensure_schedules()
        self.stdout.write(
            f"demo ready: users {', '.join(u[0] for u in DEMO_USERS)} (password = user name), "
            f"{Connection.objects.count()} connections, {n} new schedules"
        )
