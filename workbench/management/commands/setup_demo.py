"""Idempotent demo set-up: the two logins, the connections to the sandboxes, the beat schedules."""

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from connectors.sandbox.kit import Sandbox
from sync.schedules import ensure_schedules
from workbench.models import Connection

ANALYSTS = "Finance analysts"


def sandbox_connections(erp_port: int, expense_port: int) -> list[dict]:
    creds = {"client_id": Sandbox.client_id, "client_secret": Sandbox.client_secret}
    return [
        {"name": "Business Central (ERP)", "kind": "business_central", "role": Connection.Role.ERP,
         "config": {"base_url": f"http://127.0.0.1:{erp_port}", "environment": "sandbox", **creds}},
        {"name": "Concur Expense", "kind": "concur", "role": Connection.Role.EXPENSE,
         "config": {"base_url": f"http://127.0.0.1:{expense_port}", **creds}},
    ]


class Command(BaseCommand):
    help = "Create demo users (analyst/analyst, admin/admin), sandbox connections and schedules (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--erp-port", type=int, default=int(os.getenv("SANDBOX_ERP_PORT", "8101")))
        parser.add_argument("--expense-port", type=int, default=int(os.getenv("SANDBOX_EXPENSE_PORT", "8102")))

    def handle(self, *args, **opts):
        users = get_user_model()
        group, _ = Group.objects.get_or_create(name=ANALYSTS)
        if not users.objects.filter(username="admin").exists():
            users.objects.create_superuser("admin", "admin@northwind.example", "admin", first_name="Ada", last_name="Admin")
        if not users.objects.filter(username="analyst").exists():
            analyst = users.objects.create_user("analyst", "analyst@northwind.example", "analyst", first_name="Alex", last_name="Analyst")
            analyst.groups.add(group)
        for spec in sandbox_connections(opts["erp_port"], opts["expense_port"]):
            conn, created = Connection.objects.get_or_create(name=spec["name"], defaults=spec)
            if not created and conn.config.get("base_url") != spec["config"]["base_url"]:
                # Ports moved (PORT-style overrides): follow them, keep the admin's other settings.
                conn.config = {**conn.config, "base_url": spec["config"]["base_url"]}
                conn.save(update_fields=["config"])
        n = ensure_schedules()
        self.stdout.write(f"demo ready: users analyst/admin, {Connection.objects.count()} connections, {n} new schedules")
