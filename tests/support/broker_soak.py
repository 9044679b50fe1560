"""The embedded broker under fire: producers (web-like processes, a real beat, the workers themselves)
publish while supervised workers are SIGKILLed and restarted. Used by bench/broker_soak.py (the
20,000-message proof) and by a short soak in the suite.

Verdicts per message id, from the sent/done logs of tests/support/soak_app.py:
- lost: published, never completed;
- read twice: completed twice while the first reader was still alive (two consumers had it);
- redelivered after a kill: completed, then its worker died before the ack, so it ran again. That
  is at-least-once doing its job (tasks are idempotent), reported, not hidden.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sync.broker import queue_size
from sync.supervisor import Program, Supervisor

ROOT = Path(__file__).resolve().parent.parent.parent
APP = "tests.support.soak_app"
PRODUCER = """
import sys, time
from tests.support.soak_app import record
n, pause = int(sys.argv[1]), 1 / float(sys.argv[2])
for i in range(n):
    record.delay("web")
    time.sleep(pause)
"""


@dataclass
class SoakResult:
    sent: int = 0
    completed: int = 0
    lost: int = 0
    read_twice: int = 0
    redelivered_after_kill: int = 0
    unknown: int = 0  # completed but never logged as sent (a publisher killed between publish and log)
    kills: int = 0
    restarts: int = 0
    supervisor_errors: int = 0
    supervisor_survived: bool = True
    seconds: float = 0.0
    by_origin: dict = field(default_factory=dict)
    bad_files: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.read_twice == 0
            and self.supervisor_errors == 0
            and self.supervisor_survived
            and self.bad_files == 0
        )


def _env(folder: Path) -> dict:
    return {**os.environ, "SOAK_DIR": str(folder), "PYTHONPATH": str(ROOT)}


def run_soak(
    folder: Path,
    *,
    producers: int = 2,
    per_producer: int = 9000,
    rate: float = 60.0,
    workers: int = 3,
    kill_every: tuple[float, float] = (2.0, 5.0),
    settle: float = 120.0,
    seed: int = 7,
    out=print,
) -> SoakResult:
    """Run one soak in `folder` (emptied first); returns the verdicts."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = _env(folder)
    rnd = random.Random(seed)
    celery = [sys.executable, "-m", "celery", "-A", APP]
    programs = [
        Program(
            f"worker-{i}",
            [
                *celery,
                "worker",
                "--pool",
                "threads",
                "-c",
                "2",
                "-n",
                f"soak{i}@%h",
                "-l",
                "warning",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            folder / f"worker-{i}.log",
            env=env,
            cwd=str(ROOT),
        )
        for i in range(1, workers + 1)
    ]
    programs.append(
        Program(
            "beat",
            [*celery, "beat", "-l", "info", "-s", str(folder / "beat-schedule")],
            folder / "beat.log",
            env=env,
            cwd=str(ROOT),
        )
    )
    sup = Supervisor(programs, out=lambda line: None, stable_after=3.0)
    kills: list[tuple[int, float]] = []
    state = {"producing": True, "done": False, "started": time.monotonic()}
    result = SoakResult()

    def fire() -> None:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", PRODUCER, str(per_producer), str(rate)],
                env=env,
                cwd=str(ROOT),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            for _ in range(producers)
        ]
        while any(p.poll() is None for p in procs):
            time.sleep(rnd.uniform(*kill_every))
            victim = sup.programs[f"worker-{rnd.randint(1, workers)}"]
            pid = victim.pid
            if pid is not None:
                kills.append((pid, time.time()))
                sup.kill(victim.name)
        state["producing"] = False
        # Stop the beat so the backlog can drain to nothing, then wait for the workers to finish it.
        sup.retire("beat")
        sup.programs["beat"].proc.wait(30)
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            if queue_size(folder / "broker") == 0 and _claimed(folder) == 0:
                break
            time.sleep(0.5)
        time.sleep(2.0)  # the last acks
        state["done"] = True

    sup.start_all()
    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    try:
        sup.run(interval=0.2, until=lambda: state["done"])
    except BaseException:
        result.supervisor_survived = False
        raise
    finally:
        thread.join(5)
    result.seconds = time.monotonic() - state["started"]
    result.kills = len(kills)
    result.restarts = sum(p.restarts for p in programs)
    result.supervisor_errors = sup.errors
    result.bad_files = len(list((folder / "broker" / "bad").glob("*")))
    _judge(folder, kills, result)
    out(
        f"soak: {result.sent:,} sent ({', '.join(f'{k} {v:,}' for k, v in sorted(result.by_origin.items()))}), "
        f"{result.completed:,} completions in {result.seconds:.0f} s; {result.kills} workers killed, "
        f"{result.restarts} restarts; lost {result.lost}, read twice {result.read_twice}, redelivered after a "
        f"kill {result.redelivered_after_kill}, unlogged sends {result.unknown}, unreadable files {result.bad_files}, "
        f"supervisor errors {result.supervisor_errors}"
    )
    return result


def _claimed(folder: Path) -> int:
    claimed = folder / "broker" / "claimed"
    return sum(1 for d in claimed.iterdir() if d.is_dir() for _ in d.iterdir()) if claimed.exists() else 0


def _judge(folder: Path, kills: list[tuple[int, float]], result: SoakResult) -> None:
    sent: set[str] = set()
    for path in folder.glob("sent-*.log"):
        sent.update(line.strip() for line in path.read_text().splitlines() if line.strip())
    completions: dict[str, list[tuple[float, int]]] = defaultdict(list)
    origins: dict[str, int] = defaultdict(int)
    for path in folder.glob("done-*.log"):
        pid = int(path.stem.split("-")[1])
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                completions[parts[0]].append((float(parts[2]), pid))
                origins[parts[1]] += 1
    died = {pid: at for pid, at in kills}
    result.sent = len(sent)
    result.completed = sum(len(v) for v in completions.values())
    result.lost = len(sent - set(completions))
    result.unknown = len(set(completions) - sent)
    result.by_origin = dict(origins)
    for runs in completions.values():
        runs.sort()
        for (_, first_pid), (second_at, _) in zip(runs, runs[1:], strict=False):
            if first_pid in died and died[first_pid] <= second_at:
                result.redelivered_after_kill += 1
            else:
                result.read_twice += 1
