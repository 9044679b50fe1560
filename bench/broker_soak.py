"""The embedded broker soak: at least 20,000 messages from several producers (two web-like processes,
a real Celery beat, and the workers themselves) while supervised workers are SIGKILLed and restarted.

Prints what was sent, lost, read twice, redelivered after a kill (at-least-once: the worker died
between finishing a task and acknowledging it), and whether the supervisor survived. The reference
is the same run's own count of sent messages: the ratios are 0 / sent.

    .venv/bin/python bench/broker_soak.py [--producers 2] [--per-producer 9000] [--rate 60] [--workers 3]
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.broker_soak import run_soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--per-producer", type=int, default=9000)
    parser.add_argument("--rate", type=float, default=60.0, help="messages per second per producer")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-min", type=float, default=2.0, help="seconds between kills, at least")
    parser.add_argument("--kill-max", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="broker-soak-") as tmp:
        result = run_soak(
            Path(tmp) / "soak",
            producers=args.producers,
            per_producer=args.per_producer,
            rate=args.rate,
            workers=args.workers,
            kill_every=(args.kill_min, args.kill_max),
            settle=300,
        )
    print(
        f"lost {result.lost} of {result.sent:,} ({result.lost / max(result.sent, 1):.4%}); "
        f"read twice {result.read_twice} ({result.read_twice / max(result.sent, 1):.4%}); "
        f"supervisor crashes {0 if result.supervisor_survived else 1}, supervisor errors {result.supervisor_errors}"
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
