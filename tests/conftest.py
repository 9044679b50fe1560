"""Shared fixtures: personas, sandboxes (in-thread or as processes), connections, a real worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from hypothesis import settings as hypothesis_settings

from workbench.models import LegalEntity, UserScope

# Property tests: one fixed, derived seed per test in CI (HYPOTHESIS_PROFILE=ci, set by tests/run.sh), so
# a red run is the same run again; locally the default profile keeps exploring new examples.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True, database=None)
hypothesis_settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 11, 20)  # the sandboxes' world is built around this day in tests
SMALL_WORLD = {"n_employees": 40, "n_lines": 300}


def make_person(username: str, role: str, entities: list[str] | None = None, *, staff: bool = False):
    """A signed-up person with one role (a group from workbench/roles.py) and an entity scope:
    `entities` None means every entity; a list of legal entity codes (created if missing) otherwise."""
    user = get_user_model().objects.create_user(username, f"{username}@example.com", username, is_staff=staff)
    user.groups.add(Group.objects.get(name=role))
    scope = UserScope.objects.create(user=user, all_entities=entities is None)
    for code in entities or []:
        entity, _ = LegalEntity.objects.get_or_create(code=code, defaults={"name": code, "currency": "EUR"})
        scope.entities.add(entity)
    return user


@pytest.fixture
def analyst(db):
    return make_person("analyst", "Finance analysts")


@pytest.fixture
def manager(db):
    return make_person("manager", "Finance managers")


@pytest.fixture
def engineer(db):
    return make_person("engineer", "Integration engineers")


@pytest.fixture
def auditor(db):
    return make_person("auditor", "Auditors")


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", "admin")


@pytest.fixture
def jobs_sent(monkeypatch):
    """What the domain asked the worker for (workbench/jobs.py), recorded instead of sent: [(name, kwargs)]."""
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr("workbench.jobs.enqueue_on_commit", lambda name, **kwargs: sent.append((name, kwargs)))
    return sent


@pytest.fixture
def client_as(client, db):
    """The test client signed in as a new person with this role (and entity codes, None = all)."""

    def sign_in(username: str, role: str, entities: list[str] | None = None):
        client.force_login(make_person(username, role, entities))
        return client

    return sign_in


@pytest.fixture
def analyst_client(client, analyst):
    client.force_login(analyst)
    return client


# --- sandboxes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


class SandboxProcess:
    def __init__(self, kind: str, tmp: Path, **world):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            sys.executable,
            str(ROOT / "manage.py"),
            "sandbox",
            kind,
            "--port",
            str(self.port),
            "--data",
            str(tmp / f"{kind}.sqlite3"),
            "--today",
            TODAY.isoformat(),
            "--seed",
            "7",
            "--employees",
            str(world.get("n_employees", 40)),
            "--lines",
            str(world.get("n_lines", 300)),
        ]
        self.log = open(tmp / f"{kind}.log", "wb")
        self.proc = subprocess.Popen(
            args,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
            env={**os.environ, "SANDBOXES_ALLOWED": "1"},
        )
        try:
            wait_http(f"{self.url}/sandbox/health", 60)
        except Exception:
            self.stop()  # never leave a half-started server behind
            raise

    def faults(self, **faults) -> dict:
        import json

        req = urllib.request.Request(
            f"{self.url}/sandbox/faults",
            data=json.dumps(faults).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def get(self, path: str):
        import json

        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


@pytest.fixture
def sandboxes(tmp_path):
    """The ERP and expense sandboxes as real server processes, seeded with a small world."""
    started = []
    try:
        started.append(SandboxProcess("business_central", tmp_path, **SMALL_WORLD))
        started.append(SandboxProcess("concur", tmp_path, **SMALL_WORLD))
        yield {"erp": started[0], "expense": started[1]}
    finally:
        for sandbox in started:
            sandbox.stop()


def make_connections(erp_url: str, expense_url: str, **config):
    from workbench.models import Connection

    creds = {"client_id": "workbench", "client_secret": "sandbox-secret", "timeout": 5, **config}
    erp = Connection.objects.create(
        name="Business Central (ERP)",
        kind="business_central",
        role="erp",
        config={"base_url": erp_url, "environment": "sandbox", **creds},
    )
    expense = Connection.objects.create(
        name="Concur Expense", kind="concur", role="expense", config={"base_url": expense_url, **creds}
    )
    return erp, expense


@pytest.fixture
def connections(sandboxes):
    return make_connections(sandboxes["erp"].url, sandboxes["expense"].url)


# --- a real Celery worker as a process --------------------------------------------------------------


class WorkerProcess:
    def __init__(self, tmp: Path, name: str = "w1", extra_env: dict | None = None):
        from django.db import connection

        db = connection.settings_dict
        env = dict(os.environ)
        if db["ENGINE"].endswith("postgresql"):
            env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        else:
            env["SQLITE_PATH"] = db["NAME"]
        env.update(extra_env or {})
        self.log_path = tmp / f"worker-{name}.log"
        self.log = open(self.log_path, "wb")
        from sync.workers import worker_command

        self.proc = subprocess.Popen(
            worker_command(name), stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if b"ready." in self.log_path.read_bytes():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        self.kill()  # a worker that never said "ready" must not linger and eat the next test's tasks
        raise RuntimeError("worker did not start:\n" + self.log_path.read_text()[-3000:])

    def kill(self) -> None:
        """SIGKILL the whole worker process group: a crash, not a shutdown."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        else:
            try:  # the parent is gone; make sure no pool child outlives it
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def purge_broker() -> None:
    from sync.celery import app

    app.control.purge()


@pytest.fixture
def worker_factory(tmp_path):
    workers = []

    def start(name="w1", **env):
        w = WorkerProcess(tmp_path, name, {k: str(v) for k, v in env.items()})
        workers.append(w)
        return w

    purge_broker()
    yield start
    for w in workers:
        w.stop()
    purge_broker()


def wait_until(predicate, seconds: float = 60, interval: float = 0.5, message: str = "condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {seconds}s waiting for {message}")
