"""The supervisor `manage.py demo` runs everything under: restarts what dies, stops only when told."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sync.supervisor import Program, Supervisor
from tests.conftest import ROOT, wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
CRASHER = [sys.executable, "-c", "import time, sys; time.sleep(0.2); sys.exit(3)"]


def test_a_program_that_dies_is_restarted_with_backoff_and_the_others_keep_running(tmp_path):
    lines: list[str] = []
    steady = Program("steady", SLEEPER, tmp_path / "steady.log")
    crashy = Program("crashy", CRASHER, tmp_path / "crashy.log")
    sup = Supervisor([steady, crashy], out=lines.append)
    sup.start_all()
    first_pid = steady.pid
    deadline = time.monotonic() + 5
    sup.run(interval=0.05, until=lambda: time.monotonic() > deadline)
    assert crashy.restarts >= 2 and set(crashy.exits) == {3}
    assert steady.restarts == 0 and steady.exits == []  # untouched while its neighbour crashed
    assert lines[0].startswith("crashy exited with code 3; restarting in 1s (restart 1")
    assert lines[1].startswith("crashy exited with code 3; restarting in 2s (restart 2")
    assert sup.errors == 0
    # run() ends by stopping everything it started.
    assert steady.proc.poll() is not None and first_pid is not None


def test_a_worker_the_watch_calls_stalled_is_killed_and_started_again(tmp_path):
    lines: list[str] = []
    worker = Program("worker-1", SLEEPER, tmp_path / "w.log")
    calls = {"n": 0}

    def watch() -> list[str]:
        calls["n"] += 1
        return ["worker-1"] if calls["n"] == 1 else []

    sup = Supervisor([worker], watch=watch, watch_every=0.2, out=lines.append)
    sup.start_all()
    first = worker.pid
    sup.run(interval=0.05, until=lambda: worker.restarts >= 1 and worker.pid is not None)
    assert lines[0] == "worker-1 takes no task while work waits; restarting it"
    assert "signal SIGKILL" in lines[1] and worker.pid != first


SUPERVISED = """
import sys, time
from pathlib import Path
from sync.supervisor import Program, Supervisor
p = Program("child", [sys.executable, "-c", "import time; time.sleep(120)"], Path(sys.argv[1]) / "child.log")
sup = Supervisor([p])
sup.start_all()
Path(sys.argv[1], "child.pid").write_text(str(p.pid))
sup.run(interval=0.05)
print("stopped", flush=True)
"""


def test_sigterm_stops_the_supervisor_and_everything_it_started(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISED, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    child = int(wait_until(lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text(), 20))
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopped" in out

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return False

    assert wait_until(gone, 10)
