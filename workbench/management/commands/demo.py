"""The main job, one command: database, sandboxes, worker, beat and the web app, all real processes.

Embedded default: SQLite + Celery's filesystem broker under .var/. With DATABASE_URL and REDIS_URL
set, the same command runs on PostgreSQL and Redis. Ctrl-C stops everything it started.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


def _wait_http(url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.3)
    return False


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Set up and run the whole workbench: migrate, seed sandboxes, start worker, beat and web."

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
        ports = (opts["port"], opts["erp_port"], opts["expense_port"], opts["procurement_port"], opts["approvals_port"],
                 opts["identity_port"])
        busy = [p for p in ports if _port_in_use(p)]
        if busy:
            raise SystemExit(f"Port {', '.join(map(str, busy))} is already in use (another `manage.py demo`?). Stop it, or set "
                             "PORT / SANDBOX_ERP_PORT / SANDBOX_EXPENSE_PORT / SANDBOX_PROCUREMENT_PORT / SANDBOX_APPROVALS_PORT / SANDBOX_IDENTITY_PORT.")
        var = Path(settings.VAR_DIR)
        logs = var / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("setup_demo", erp_port=opts["erp_port"], expense_port=opts["expense_port"],
                     procurement_port=opts["procurement_port"], approvals_port=opts["approvals_port"],
                     identity_port=opts["identity_port"])
        py = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        today = opts["today"] or date.today().isoformat()
        procs: list[tuple[str, subprocess.Popen]] = []
        # `kill <pid>` must stop the children too: turn SIGTERM into the same path as Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)

        def start(name: str, cmd: list[str]) -> None:
            log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
            procs.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR,
                                                 start_new_session=True)))

        start("sandbox-erp", [py, manage, "sandbox", "business_central", "--port", str(opts["erp_port"]),
                              "--data", str(var / "sandbox-business_central.sqlite3"), "--today", today])
        start("sandbox-expense", [py, manage, "sandbox", "concur", "--port", str(opts["expense_port"]),
                                  "--data", str(var / "sandbox-concur.sqlite3"), "--today", today, "--lines", str(opts["lines"])])
        # Coupa also holds a few suppliers typed in by hand, which the supplier crosswalk has to match.
        for kind, port, extra in (("coupa", opts["procurement_port"], ["--option", "coupa_only_suppliers=true"]),
                                  ("servicenow", opts["approvals_port"], []), ("scim", opts["identity_port"], [])):
            start(f"sandbox-{kind}", [py, manage, "sandbox", kind, "--port", str(port),
                                      "--data", str(var / f"sandbox-{kind}.sqlite3"), "--today", today, *extra])
        for name, port in (("ERP", opts["erp_port"]), ("expense", opts["expense_port"]),
                           ("procurement", opts["procurement_port"]), ("approvals", opts["approvals_port"]),
                           ("identity", opts["identity_port"])):
            if not _wait_http(f"http://127.0.0.1:{port}/sandbox/health", 60):
                self._stop(procs)
                raise SystemExit(f"The {name} sandbox did not start on port {port}; see {logs}.")
        celery = [py, "-m", "celery", "-A", "sync"]
        start("worker", celery + ["worker", "-l", "info", "-c", "2", "-n", "worker@%h"])
        start("beat", celery + ["beat", "-l", "info", "-s", str(var / "celerybeat-schedule")])
        start("web", [py, "-m", "gunicorn", "workbench.wsgi", "-b", f"127.0.0.1:{opts['port']}", "-w", "2", "--threads", "4",
                      "--access-logfile", "-", "--timeout", "60"])
        # First sync right away; beat keeps it going (master data, then expense reports once it exists).
        from sync.tasks import scheduled_job_task
        from workbench.models import Connection

        for conn in Connection.objects.filter(enabled=True, role=Connection.Role.ERP):
            scheduled_job_task.delay(conn.name, "master_data")
        for conn in Connection.objects.filter(enabled=True, role=Connection.Role.EXPENSE):
            scheduled_job_task.apply_async((conn.name, "expense_pull"), countdown=20)
        for conn in Connection.objects.filter(enabled=True, role=Connection.Role.APPROVALS):
            scheduled_job_task.apply_async((conn.name, "approvals_pull"), countdown=10)
        for conn in Connection.objects.filter(enabled=True, role=Connection.Role.PROCUREMENT):
            scheduled_job_task.apply_async((conn.name, "procurement_pull"), countdown=25)
        for conn in Connection.objects.filter(enabled=True, role=Connection.Role.IDENTITY):
            scheduled_job_task.apply_async((conn.name, "identity_pull"), countdown=15)
        url = f"http://127.0.0.1:{opts['port']}"
        self._wire_p2p_sandboxes(url, opts)
        ok = _wait_http(f"{url}/healthz", 60)
        db = "PostgreSQL" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "SQLite (embedded)"
        broker = "Redis" if settings.REDIS_URL else "filesystem (embedded)"
        self.stdout.write(self.style.SUCCESS(f"\nFinance Exception Workbench is {'running' if ok else 'starting'} at {url}/"))
        self.stdout.write("  log in as  analyst / analyst   (finance analyst)")
        self.stdout.write("         or  admin / admin       (admin)")
        self.stdout.write(f"  database: {db}; broker: {broker}; logs: {logs}")
        self.stdout.write(f"  sandboxes: ERP http://127.0.0.1:{opts['erp_port']}/  expense http://127.0.0.1:{opts['expense_port']}/  "
                          f"procurement http://127.0.0.1:{opts['procurement_port']}/  approvals http://127.0.0.1:{opts['approvals_port']}/  "
                          f"identity http://127.0.0.1:{opts['identity_port']}/")
        self.stdout.write("  the first sync runs now; expense reports are posted within about a minute. Ctrl-C stops everything.\n")
        try:
            while True:
                for name, p in procs:
                    if p.poll() is not None:
                        self.stderr.write(f"{name} exited with {p.returncode}; see {logs / (name + '.log')}")
                        raise KeyboardInterrupt
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(procs)

    @staticmethod
    def _wire_p2p_sandboxes(url: str, opts) -> None:
        """Coupa's Call Out points at our validation API; ServiceNow decides by itself after a minute (demo only)."""
        import json
        import urllib.request

        from workbench.management.commands.setup_demo import callout_token

        for port, path, body in (
                (opts["procurement_port"], "/sandbox/callout",
                 {"url": f"{url}/api/p2p/requisitions/validate/", "token": callout_token()}),
                (opts["approvals_port"], "/sandbox/autodecide", {"after_seconds": 60, "reject_over": "250000"})):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=5).close()
            except OSError:
                pass  # the demo still runs; requisitions are then validated by the next pull

    @staticmethod
    def _stop(procs) -> None:
        for _, p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
