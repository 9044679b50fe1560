"""Run a vendor sandbox as a real HTTP server process: `manage.py sandbox concur --port 8102`."""

import json
from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from connectors.sandboxkit import SANDBOXES, sandbox_class
from connectors.sandboxkit.kit import serve


class Command(BaseCommand):
    help = "Run a vendor sandbox (a real HTTP server in the vendor's API shape, seeded deterministically)."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(SANDBOXES))
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=0)
        parser.add_argument("--data", default=None, help="SQLite file that keeps the sandbox's state across restarts")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--today", default=None, help="YYYY-MM-DD the seed is built around (default: today)")
        parser.add_argument("--employees", type=int, default=200)
        parser.add_argument("--lines", type=int, default=2000)
        parser.add_argument("--faults", default="{}", help='JSON, e.g. {"error_rate": 0.1, "throttle_rate": 0.1}')
        parser.add_argument(
            "--option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a sandbox option, e.g. coupa_only_suppliers=true (repeatable)",
        )

    def handle(self, *args, **opts):
        if not settings.SANDBOXES_ALLOWED:
            raise CommandError(
                "Sandboxes are fake vendor systems for development, tests and the demo; this "
                "installation does not allow them. Set DEBUG=1 or SANDBOXES_ALLOWED=1 to run one."
            )
        try:
            faults = json.loads(opts["faults"])
            today = date.fromisoformat(opts["today"]) if opts["today"] else date.today()
            options = dict(_option(o) for o in opts["option"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        sandbox = sandbox_class(opts["kind"])(
            data_path=opts["data"],
            seed=opts["seed"],
            faults=faults,
            today=today,
            n_employees=opts["employees"],
            n_lines=opts["lines"],
            **options,
        )
        serve(sandbox, opts["host"], opts["port"])


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise ValueError(f"--option takes KEY=VALUE, not {text!r}")
    low = value.strip().lower()
    return key, True if low == "true" else False if low == "false" else int(low) if low.lstrip("-").isdigit() else value
