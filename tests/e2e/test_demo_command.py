"""README's first command on the embedded default (SQLite, the folder broker): it serves, survives a
killed worker and a killed sandbox, and stops everything it started on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_until

pytestmark = pytest.mark.slow


def children_of(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    return {int(a) for a, b in (line.split() for line in out.splitlines()) if int(b) == pid}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def health(url: str) -> dict:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def test_the_demo_serves_restarts_what_dies_and_stops_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["VAR_DIR"] = str(tmp_path / "var")
    ports = [free_port() for _ in range(6)]
    names = ["--port", "--erp-port", "--expense-port", "--procurement-port", "--approvals-port", "--identity-port"]
    args = [a for pair in zip(names, map(str, ports), strict=True) for a in pair]
    out_path = tmp_path / "demo.out"
    with open(out_path, "wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "manage.py", "demo", *args, "--lines", "200"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{ports[0]}"
    try:
        wait_until(
            lambda: b"is running at" in out_path.read_bytes() or demo.poll() is not None,
            180,
            message="the demo to start",
        )
        assert demo.poll() is None, out_path.read_text()[-3000:]
        workers = wait_until(
            lambda: (
                {w["name"].split("@")[0]: w["pid"] for w in health(url)["workers"]["workers"]}
                if len(health(url)["workers"]["workers"]) == 2
                else None
            ),
            60,
            message="two workers",
        )
        before = children_of(demo.pid)
        os.kill(workers["worker-1"], signal.SIGKILL)
        wait_until(lambda: b"worker-1 exited with signal SIGKILL; restarting in 1s" in out_path.read_bytes(), 30)
        # The rest keeps serving meanwhile, and the worker comes back under a new pid.
        with urllib.request.urlopen(f"{url}/accounts/login/", timeout=5) as r:
            assert r.status == 200
        wait_until(
            lambda: (
                {w["name"].split("@")[0]: w["pid"] for w in health(url)["workers"]["workers"]}["worker-1"]
                != workers["worker-1"]
            ),
            60,
            message="worker-1 back",
        )
        assert demo.poll() is None
        text = out_path.read_text() + "".join(
            p.read_text(errors="replace") for p in (tmp_path / "var" / "logs").glob("*.log")
        )
        assert "No hostname was supplied" not in text
        assert not (ROOT / "control").exists()  # kombu's control folder stays under VAR_DIR
        everyone = before | children_of(demo.pid)
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    assert wait_until(lambda: not any(alive(pid) for pid in everyone), 30, message="every child to stop")
    # The demo's work (synced documents, postings, items, their events) left an audit chain that holds.
    verify = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert verify.returncode == 0, verify.stderr[-2000:]
    checked = int(verify.stdout.split("audit chain intact: ")[1].split(" records")[0])
    assert checked > 20, verify.stdout  # set-up (roles, people, connections, schedules) and the first syncs
