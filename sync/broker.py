"""The embedded broker: a folder of message files that no reader half-reads and no dead consumer loses.

Kombu's own filesystem transport creates a message file and then writes into it while its reader
takes no lock, so a worker can read an empty file and die (``JSONDecodeError``, an old open kombu
report); and it deletes a message as soon as it is read, so a consumer killed before its late ack
loses it. This transport keeps the idea (a folder, no server) and changes the three moves:

- **publish**: write the message to ``tmp/`` and rename it into ``queue/``. A rename within one
  filesystem is atomic, so every file in ``queue/`` is complete.
- **claim**: rename the file from ``queue/`` into the consumer's own ``claimed/<owner>/``. Exactly
  one rename of a file succeeds, so two consumers never get the same message.
- **ack**: delete the claimed file (a reject with requeue renames it back).

Each consumer holds an ``flock`` on ``claimed/<owner>.lock`` for as long as it lives. The kernel
drops that lock when the process dies, even on SIGKILL, so a consumer that finds an owner's lock
free knows the owner is dead and moves its claimed files back to ``queue/``: what a killed worker
held is delivered again, once. A file that cannot be parsed goes to ``bad/`` with an error line
instead of killing the worker.

Why not the alternatives: SQLAlchemy's kombu transport marks a message invisible when it is read
and never brings it back (a killed worker loses it); an in-process Redis stand-in loses everything
when its process dies. Files plus rename plus flock need nothing but the kernel, and each guarantee
above rests on one system call.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from pathlib import Path
from queue import Empty

from kombu.transport import filesystem, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

RECOVER_EVERY = 2.0  # seconds between looks for dead consumers' claims
RELIST_EVERY = 1.0  # seconds a cached listing of queue/ is used before the folder is read again


def _queue_of(filename: str) -> str:
    """`<time>-<uuid>.<queue>.msg` -> queue (queue names may hold dots; the prefix holds none)."""
    rest = filename.partition(".")[2]
    return rest[: -len(".msg")] if rest.endswith(".msg") else ""


class QoS(virtual.QoS):
    """Acks and rejects act on the claimed file; unacked messages go back to the queue on close."""

    def ack(self, delivery_tag):
        self.channel._settle(delivery_tag)
        super().ack(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if requeue:
            self.channel._unclaim(delivery_tag)
        else:
            self.channel._settle(delivery_tag)
        self._quick_ack(delivery_tag)

    def restore_unacked(self):
        self._flush()
        for tag in list(self._delivered):
            self.channel._unclaim(tag)
        self._delivered.clear()
        return []


class Channel(filesystem.Channel):
    QoS = QoS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._claimed: dict[str, Path] = {}  # delivery tag -> claimed file
        self._no_ack_queues: set[str] = set()
        self._owner: str | None = None
        self._lock_fd: int | None = None
        self._listing: list[str] = []
        self._listed_at = 0.0
        self._recovered_at = 0.0
        self.root = Path(self.transport_options.get("folder") or "broker")
        for sub in ("queue", "tmp", "claimed", "bad", "control"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # --- folders -------------------------------------------------------------------------------

    @property
    def control_folder(self) -> Path:  # fanout exchange tables (kombu's pidbox); never the working directory
        return self.root / "control"

    @property
    def queue_dir(self) -> Path:
        return self.root / "queue"

    def get_table(self, exchange):
        """Bindings from the shared table file (fanout across processes) and from this process's own
        declarations, so a missing or stale table file never silently drops a message."""
        table = list(super().get_table(exchange))
        for meta in self.state.exchanges.get(exchange, {}).get("table", []):
            entry = filesystem.exchange_queue_t(*meta)
            if entry not in table:
                table.append(entry)
        return table

    # --- publish -------------------------------------------------------------------------------

    def _put(self, queue, payload, **kwargs):
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}.{queue}.msg"
        tmp = self.root / "tmp" / name
        with open(tmp, "wb") as f:
            f.write(str_to_bytes(dumps(payload)))
        os.replace(tmp, self.queue_dir / name)

    # --- claim, ack, give back -----------------------------------------------------------------

    def _own_dir(self) -> Path:
        """This consumer's claim folder, created with its liveness lock on first use."""
        if self._owner is None:
            owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
            folder = self.root / "claimed" / owner
            folder.mkdir()
            # Lock under a name recovery ignores, then rename: nobody ever sees the lock file unlocked.
            tmp = self.root / "claimed" / f".{owner}.locking"
            fd = os.open(tmp, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.replace(tmp, self.root / "claimed" / f"{owner}.lock")
            self._owner, self._lock_fd = owner, fd
        return self.root / "claimed" / self._owner

    def _next_names(self, queue: str) -> list[str]:
        now = time.monotonic()
        if not self._listing or now - self._listed_at > RELIST_EVERY:
            self._listing = sorted(os.listdir(self.queue_dir))
            self._listed_at = now
        return self._listing

    def _get(self, queue, timeout=None):
        now = time.monotonic()
        if now - self._recovered_at > RECOVER_EVERY:
            self._recovered_at = now
            recover_dead_claims(self.root)
        own = self._own_dir()
        names = self._next_names(queue)
        while names:
            name = names.pop(0)
            if _queue_of(name) != queue:
                continue
            target = own / name
            try:
                os.rename(self.queue_dir / name, target)  # the claim: one rename wins
            except FileNotFoundError:
                continue  # another consumer took it
            try:
                payload = loads(bytes_to_str(target.read_bytes()))
                tag = payload["properties"]["delivery_tag"]
            except (ValueError, KeyError, TypeError) as exc:
                os.replace(target, self.root / "bad" / name)
                log.error("broker: message %s cannot be read (%s); moved to %s", name, exc, self.root / "bad")
                continue
            if queue in self._no_ack_queues:
                target.unlink(missing_ok=True)
            else:
                self._claimed[tag] = target
            return payload
        raise Empty()

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def basic_get(self, queue, no_ack=False, **kwargs):
        message = super().basic_get(queue, no_ack=no_ack, **kwargs)
        if message is not None and no_ack:
            self._settle(message.delivery_tag)
        return message

    def _settle(self, tag) -> None:
        path = self._claimed.pop(tag, None)
        if path is not None:
            path.unlink(missing_ok=True)

    def _unclaim(self, tag) -> None:
        path = self._claimed.pop(tag, None)
        if path is not None:
            try:
                os.replace(path, self.queue_dir / path.name)
            except FileNotFoundError:
                pass
            self._listing = []

    # --- the rest of the channel API -------------------------------------------------------------

    def _size(self, queue):
        return sum(1 for name in os.listdir(self.queue_dir) if _queue_of(name) == queue)

    def _purge(self, queue):
        n = 0
        for name in os.listdir(self.queue_dir):
            if _queue_of(name) == queue:
                try:
                    (self.queue_dir / name).unlink()
                    n += 1
                except FileNotFoundError:
                    pass
        self._listing = []
        return n

    def close(self):
        super().close()  # gives unacked messages back (QoS.restore_unacked)
        if self._lock_fd is not None:
            folder = self.root / "claimed" / self._owner
            try:
                folder.rmdir()
                (self.root / "claimed" / f"{self._owner}.lock").unlink(missing_ok=True)
            except OSError:
                pass  # still holds files (another thread's late ack?): recovery takes them once we are gone
            os.close(self._lock_fd)
            self._lock_fd = None


def recover_dead_claims(root: Path) -> int:
    """Give back what consumers that died were holding; returns how many messages went back."""
    claimed, queue = root / "claimed", root / "queue"
    restored = 0
    for lock in claimed.glob("*.lock"):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its owner is alive
            folder = claimed / lock.stem
            n = 0
            if folder.is_dir():
                for f in sorted(folder.iterdir()):
                    try:
                        os.replace(f, queue / f.name)
                        n += 1
                    except FileNotFoundError:
                        pass
                try:
                    folder.rmdir()
                except OSError:
                    pass
            lock.unlink(missing_ok=True)
            if n:
                log.warning("broker: a consumer (%s) died holding %d message(s); they are queued again", lock.stem, n)
            restored += n
        finally:
            os.close(fd)
    return restored


def queue_size(root: Path, queue: str = "celery") -> int:
    """Messages waiting in the folder (not yet claimed)."""
    try:
        return sum(1 for name in os.listdir(root / "queue") if _queue_of(name) == queue)
    except FileNotFoundError:
        return 0


class Transport(filesystem.Transport):
    Channel = Channel
    global_state = virtual.BrokerState()
    driver_type = "filesystem"
    driver_name = "workbench-filesystem"
