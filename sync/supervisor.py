"""A small process supervisor: what `manage.py demo` (and the broker soak) runs its processes under.

Each program runs in its own process group with its output in a log file. One that exits is started
again after a backoff (1 s, doubling to 30 s; back to 1 s once it has stayed up a minute) with a log
line, and the others keep serving. Only Ctrl-C or SIGTERM stops everything. A `watch` callback may
name programs to restart (a worker that takes no task while work waits). The loop itself never
raises: an error in one round is logged and the next round runs.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("supervisor")

BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
STABLE_AFTER = 60.0  # seconds up after which a program's backoff starts again from BACKOFF_FIRST


@dataclass
class Program:
    name: str
    cmd: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: str | None = None
    # what the supervisor knows of it
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = BACKOFF_FIRST
    restart_at: float | None = None
    exits: list[int] = field(default_factory=list)
    retired: bool = False  # stopped for good: not restarted

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


class Supervisor:
    def __init__(
        self,
        programs: list[Program],
        *,
        watch: Callable[[], list[str]] | None = None,
        watch_every: float = 30.0,
        out: Callable[[str], None] | None = None,
        stable_after: float = STABLE_AFTER,
    ):
        self.programs = {p.name: p for p in programs}
        self.stable_after = stable_after
        self.watch = watch
        self.watch_every = watch_every
        self._watched_at = time.monotonic()
        self._stopping = False
        self.errors = 0  # rounds of the loop that raised (logged, survived)
        self.out = out or (lambda line: log.warning("%s", line))

    # --- starting and stopping ---------------------------------------------------------------------

    def start(self, program: Program) -> None:
        program.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(program.log_path, "ab") as logfile:  # the child keeps its own descriptor
            program.proc = subprocess.Popen(
                program.cmd,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                cwd=program.cwd,
                env=program.env,
                start_new_session=True,
            )
        program.started_at = time.monotonic()
        program.restart_at = None

    def start_all(self) -> None:
        for program in self.programs.values():
            self.start(program)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a program's whole process group (the loop then restarts it)."""
        program = self.programs[name]
        if program.proc is not None and program.proc.poll() is None:
            try:
                os.killpg(program.proc.pid, sig)
            except ProcessLookupError:
                pass

    def retire(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop one program for good (it is not restarted)."""
        self.programs[name].retired = True
        self.kill(name, sig)

    def stop_all(self, grace: float = 10.0) -> None:
        self._stopping = True
        running = [p for p in self.programs.values() if p.proc is not None and p.proc.poll() is None]
        for p in running:
            try:
                os.killpg(p.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for p in running:
            try:
                p.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.proc.wait(5)

    # --- the loop ---------------------------------------------------------------------------------

    def poll(self) -> None:
        """One round: notice exits, schedule and do restarts, run the watch."""
        now = time.monotonic()
        for p in self.programs.values():
            if p.proc is None or p.retired or self._stopping:
                continue
            code = p.proc.poll()
            if code is not None and p.restart_at is None:
                if now - p.started_at >= self.stable_after:
                    p.backoff = BACKOFF_FIRST
                p.exits.append(code)
                p.restart_at = now + p.backoff
                self.out(
                    f"{p.name} exited with {_exit_text(code)}; restarting in {p.backoff:.0f}s "
                    f"(restart {p.restarts + 1}; log {p.log_path})"
                )
                p.backoff = min(BACKOFF_CAP, p.backoff * 2)
            if p.restart_at is not None and now >= p.restart_at:
                p.restarts += 1
                self.start(p)
        if self.watch is not None and now - self._watched_at >= self.watch_every:
            self._watched_at = now
            for name in self.watch():
                self.out(f"{name} takes no task while work waits; restarting it")
                self.kill(name)

    def run(self, *, interval: float = 0.5, until: Callable[[], bool] | None = None) -> None:
        """Supervise until Ctrl-C, SIGTERM or `until()`; then stop everything."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not self._stopping and not (until and until()):
                try:
                    self.poll()
                except Exception:  # noqa: BLE001 - the supervisor outlives any one bad round
                    self.errors += 1
                    log.exception("supervisor round failed; carrying on")
                time.sleep(interval)
        finally:
            self.stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _on_signal(self, signum, frame) -> None:
        self._stopping = True


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
