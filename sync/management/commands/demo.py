"""The main job, one command: database, sandboxes, workers, beat and the web app, all real processes.

Embedded default: SQLite and the folder broker (sync/broker.py) under VAR_DIR. With DATABASE_URL and
REDIS_URL set, the same command runs on PostgreSQL and Redis. Every process runs under the
supervisor (sync/supervisor.py): one that dies is started again with a backoff and a log line while
the rest keep serving, and workers that take no task while work waits are restarted. Only Ctrl-C or
SIGTERM stops everything.
"""

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from sync.management.commands.setup_demo import callout_token, sso_demo_env
from sync.supervisor import Program, Supervisor
from sync.tasks import scheduled_job_task
from sync.workers import worker_command, worker_health
from workbench.models import Connection

WORKERS = ("worker-1", "worker-2")  # two processes: one restarting never leaves the queue unserved
# What the first sync runs, and how many seconds after start (master data first: the rest waits on it).
FIRST_RUNS = (
    (Connection.Role.ERP, "master_data", 0),
    (Connection.Role.APPROVALS, "approvals_pull", 10),
    (Connection.Role.IDENTITY, "identity_pull", 15),
    (Connection.Role.EXPENSE, "expense_pull", 20),
    (Connection.Role.PROCUREMENT, "procurement_pull", 25),
)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (e.g. /healthz says 503 while the first sync warms up)
    except OSError:
        return False


def _wait_http(url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(url):
            return True
        time.sleep(0.3)
    return False


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stalled_workers() -> list[str]:
    return list(WORKERS) if worker_health()["status"] == "stalled" else []


class Command(BaseCommand):
    help = "Set up and run the whole workbench: migrate, seed sandboxes, start workers, beat and web, supervised."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.getenv("PORT", "8000")))
        parser.add_argument("--erp-port", type=int, default=int(os.getenv("SANDBOX_ERP_PORT", "8101")))
        parser.add_argument("--expense-port", type=int, default=int(os.getenv("SANDBOX_EXPENSE_PORT", "8102")))
        parser.add_argument("--procurement-port", type=int, default=int(os.getenv("SANDBOX_PROCUREMENT_PORT", "8103")))
        parser.add_argument("--approvals-port", type=int, default=int(os.getenv("SANDBOX_APPROVALS_PORT", "8104")))
        parser.add_argument("--identity-port", type=int, default=int(os.getenv("SANDBOX_IDENTITY_PORT", "8105")))
        parser.add_argument("--lines", type=int, default=2000, help="expense lines seeded in the expense sandbox")
        parser.add_argument("--today", default=None, help="YYYY-MM-DD the sandboxes' data is built around")

    def handle(self, *args, **opts):
        ports = {
            "web": opts["port"],
            "erp": opts["erp_port"],
            "expense": opts["expense_port"],
            "procurement": opts["procurement_port"],
            "approvals": opts["approvals_port"],
            "identity": opts["identity_port"],
        }
        busy = [p for p in ports.values() if _port_in_use(p)]
        if busy:
            raise SystemExit(
                f"Port {', '.join(map(str, busy))} is already in use (another `manage.py demo`?). Stop it, or set "
                "PORT / SANDBOX_ERP_PORT / SANDBOX_EXPENSE_PORT / SANDBOX_PROCUREMENT_PORT / "
                "SANDBOX_APPROVALS_PORT / SANDBOX_IDENTITY_PORT."
            )
        var = Path(settings.VAR_DIR)
        logs = var / "logs"
        call_command("migrate", interactive=False, verbosity=0)
        call_command(
            "setup_demo",
            erp_port=ports["erp"],
            expense_port=ports["expense"],
            procurement_port=ports["procurement"],
            approvals_port=ports["approvals"],
            identity_port=ports["identity"],
        )
        today = opts["today"] or date.today().isoformat()
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        # Sandboxes are a development tool: the demo allows them explicitly.
        # Single sign-on against the identity sandbox too, unless OIDC_RP_CLIENT_ID names another provider.
        sso = sso_demo_env(ports["identity"])
        env = {**os.environ, **sso, "SANDBOXES_ALLOWED": "1"}

        def program(name: str, cmd: list[str]) -> Program:
            return Program(name, cmd, logs / f"{name}.log", env=env, cwd=str(settings.BASE_DIR))

        def sandbox(name: str, kind: str, port: int, *extra: str) -> Program:
            return program(
                f"sandbox-{name}",
                [
                    *manage,
                    "sandbox",
                    kind,
                    "--port",
                    str(port),
                    "--data",
                    str(var / f"sandbox-{kind}.sqlite3"),
                    "--today",
                    today,
                    *extra,
                ],
            )

        sandboxes = [
            sandbox("erp", "business_central", ports["erp"]),
            sandbox("expense", "concur", ports["expense"], "--lines", str(opts["lines"])),
            # Coupa also holds a few suppliers typed in by hand, which the supplier crosswalk has to match.
            sandbox("procurement", "coupa", ports["procurement"], "--option", "coupa_only_suppliers=true"),
            sandbox("approvals", "servicenow", ports["approvals"]),
            sandbox("identity", "scim", ports["identity"]),
        ]
        services = [program(name, worker_command(name)) for name in WORKERS] + [
            program(
                "beat",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "sync",
                    "beat",
                    "-l",
                    "info",
                    "-s",
                    str(var / "celerybeat-schedule"),
                ],
            ),
            program(
                "web",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "workbench.wsgi",
                    "-b",
                    f"127.0.0.1:{ports['web']}",
                    "-w",
                    "2",
                    "--threads",
                    "4",
                    "--access-logfile",
                    "-",
                    "--timeout",
                    "60",
                ],
            ),
        ]
        sup = Supervisor(sandboxes + services, watch=_stalled_workers, out=lambda line: self.stderr.write(line))
        try:
            for p in sandboxes:
                sup.start(p)
            for p in sandboxes:
                port = p.cmd[p.cmd.index("--port") + 1]
                if not _wait_http(f"http://127.0.0.1:{port}/sandbox/health", 60):
                    raise SystemExit(f"The {p.name} did not start on port {port}; see {p.log_path}.")
            for p in services:
                sup.start(p)
            for role, job, after in FIRST_RUNS:
                for conn in Connection.objects.filter(enabled=True, role=role):
                    scheduled_job_task.apply_async((conn.name, job), countdown=after)
            url = f"http://127.0.0.1:{ports['web']}"
            self._wire_p2p_sandboxes(url, ports)
            up = _wait_http(f"{url}/healthz", 60)
        except BaseException:
            sup.stop_all()
            raise
        db = "PostgreSQL" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "SQLite (embedded)"
        broker = "Redis" if settings.REDIS_URL else "folder broker (embedded)"
        self.stdout.write(
            self.style.SUCCESS(f"\nFinance Exception Workbench is {'running' if up else 'starting'} at {url}/")
        )
        self.stdout.write("  log in as  analyst / analyst       (finance analyst, every entity)")
        self.stdout.write("         or  analyst.de / analyst.de (finance analyst, German entity only)")
        self.stdout.write("         or  manager / manager       (finance manager: approves overrides)")
        self.stdout.write("         or  engineer / engineer     (integration engineer)")
        self.stdout.write("         or  auditor / auditor       (auditor: reads, exports the audit trail)")
        self.stdout.write("         or  admin / admin           (administrator: mappings, settings, users)")
        if sso:
            self.stdout.write(
                "         or  Sign in with Microsoft Entra ID: a directory user with an app role, password "
                f"sandbox (see http://127.0.0.1:{ports['identity']}/)"
            )
        self.stdout.write(f"  database: {db}; broker: {broker}; logs: {logs}")
        self.stdout.write(
            "  sandboxes: "
            + "  ".join(
                f"{name} http://127.0.0.1:{ports[name]}/"
                for name in ("erp", "expense", "procurement", "approvals", "identity")
            )
        )
        self.stdout.write("  the first sync runs now; expense reports are posted within about a minute.")
        self.stdout.write("  every process is supervised (a crash is restarted); Ctrl-C stops everything.\n")
        sup.run()

    @staticmethod
    def _wire_p2p_sandboxes(url: str, ports: dict) -> None:
        """Coupa's Call Out points at our validation API; ServiceNow decides by itself after a minute (demo only)."""
        for port, path, body in (
            (
                ports["procurement"],
                "/sandbox/callout",
                {"url": f"{url}/api/p2p/requisitions/validate/", "token": callout_token()},
            ),
            (ports["approvals"], "/sandbox/autodecide", {"after_seconds": 60, "reject_over": "250000"}),
        ):
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}",
                data=json.dumps(body).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            try:
                urllib.request.urlopen(req, timeout=5).close()
            except OSError:
                pass  # the demo still runs; requisitions are then validated by the next pull
