"""Idempotent demo set-up: the two logins, the connections to the sandboxes, the beat schedules."""

import os
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from connectors.sandboxkit.kit import Sandbox
from sync.schedules import ensure_schedules
from workbench.models import ApprovalRule, Connection, MatchTolerance

ANALYSTS = "Finance analysts"


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
    """The API token the procurement suite's Call Out uses to reach the validation endpoint."""
    user, created = get_user_model().objects.get_or_create(
        username="procurement-callout", defaults={"first_name": "Coupa", "last_name": "Call Out"}
    )
    if created:
        user.set_unusable_password()
        user.save()
    return Token.objects.get_or_create(user=user)[0].key


class Command(BaseCommand):
    help = "Create demo users (analyst/analyst, admin/admin), sandbox connections and schedules (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--erp-port", type=int, default=int(os.getenv("SANDBOX_ERP_PORT", "8101")))
        parser.add_argument("--expense-port", type=int, default=int(os.getenv("SANDBOX_EXPENSE_PORT", "8102")))
        parser.add_argument("--procurement-port", type=int, default=int(os.getenv("SANDBOX_PROCUREMENT_PORT", "8103")))
        parser.add_argument("--approvals-port", type=int, default=int(os.getenv("SANDBOX_APPROVALS_PORT", "8104")))
        parser.add_argument("--identity-port", type=int, default=int(os.getenv("SANDBOX_IDENTITY_PORT", "8105")))

    def handle(self, *args, **opts):
        users = get_user_model()
        group, _ = Group.objects.get_or_create(name=ANALYSTS)
        if not users.objects.filter(username="admin").exists():
            users.objects.create_superuser(
                "admin", "admin@northwind.example", "admin", first_name="Ada", last_name="Admin"
            )
        if not users.objects.filter(username="analyst").exists():
            analyst = users.objects.create_user(
                "analyst", "analyst@northwind.example", "analyst", first_name="Alex", last_name="Analyst"
            )
            analyst.groups.add(group)
        p2p_defaults()
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
            f"demo ready: users analyst/admin, {Connection.objects.count()} connections, {n} new schedules"
        )
