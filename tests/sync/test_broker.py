"""The embedded broker (sync/broker.py): never half-read, never read twice, nothing lost with a dead consumer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from kombu import Connection

from sync.broker import queue_size
from tests.conftest import ROOT
from tests.support.broker_soak import run_soak


def connect(folder: Path) -> Connection:
    return Connection(
        "filesystem://localhost/",
        transport="sync.broker:Transport",
        transport_options={"folder": str(folder), "polling_interval": 0.01},
    )


def test_a_message_still_being_written_is_not_seen_and_a_whole_one_is(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        # A writer that died half-way leaves its bytes in tmp/, never in queue/.
        (tmp_path / "tmp" / "00000000000000000001-dead.jobs.msg").write_text('{"body": "eyJh')
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.2)
        queue.put({"n": 1})
        message = queue.get(timeout=2)
        assert message.payload == {"n": 1}
        message.ack()
        assert queue_size(tmp_path, "jobs") == 0 and not any((tmp_path / "claimed").rglob("*.msg"))
        queue.close()


def test_an_unreadable_file_is_set_aside_and_the_consumer_carries_on(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        (tmp_path / "queue" / "00000000000000000001-empty.jobs.msg").write_bytes(b"")
        queue.put({"n": 2})
        message = queue.get(timeout=2)
        assert message.payload == {"n": 2}
        message.ack()
        assert [p.name for p in (tmp_path / "bad").iterdir()] == ["00000000000000000001-empty.jobs.msg"]
        queue.close()


def test_a_rejected_message_comes_back_once(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put({"n": 3})
        queue.get(timeout=2).requeue()
        again = queue.get(timeout=2)
        assert again.payload == {"n": 3}
        again.ack()
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.2)
        queue.close()


HOLDER = """
import sys, time
from kombu import Connection
conn = Connection("filesystem://localhost/", transport="sync.broker:Transport",
                  transport_options={"folder": sys.argv[1], "polling_interval": 0.01})
q = conn.SimpleQueue("jobs")
m = q.get(timeout=5)
print("holding", m.payload["n"], flush=True)
time.sleep(60)
"""


def test_what_a_killed_consumer_held_is_delivered_again(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put({"n": 4})
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert holder.stdout.readline().split() == ["holding", "4"]
        # While its holder lives, nobody else gets it.
        with pytest.raises(queue.Empty):
            queue.get(timeout=2.5)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        message = queue.get(timeout=5)  # recovery runs within a couple of seconds
        assert message.payload == {"n": 4}
        message.ack()
        queue.close()


def test_concurrent_producers_and_consumers_share_no_message(tmp_path):
    with connect(tmp_path) as conn:
        conn.SimpleQueue("jobs").close()  # declare
    got: list[int] = []
    lock = threading.Lock()

    def produce(start: int) -> None:
        with connect(tmp_path) as conn:
            q = conn.SimpleQueue("jobs")
            for n in range(start, start + 500):
                q.put({"n": n})
            q.close()

    def consume() -> None:
        with connect(tmp_path) as conn:
            q = conn.SimpleQueue("jobs")
            while True:
                try:
                    m = q.get(timeout=1.5)
                except q.Empty:
                    break
                with lock:
                    got.append(m.payload["n"])
                m.ack()
            q.close()

    threads = [threading.Thread(target=produce, args=(s,)) for s in (0, 500)] + [
        threading.Thread(target=consume) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(got) == list(range(1000))


@pytest.mark.slow
def test_a_short_soak_with_workers_killed_loses_nothing_and_reads_nothing_twice(tmp_path):
    result = run_soak(
        tmp_path / "soak",
        producers=2,
        per_producer=300,
        rate=80,
        workers=2,
        kill_every=(1.5, 3.0),
        settle=90,
        out=lambda line: None,
    )
    assert result.sent >= 600 and result.kills >= 2
    assert result.lost == 0 and result.read_twice == 0
    assert result.supervisor_survived and result.supervisor_errors == 0 and result.bad_files == 0
