"""Reconcile ~100,000 master-data records of the ERP sandbox (a separate process) with the ledger.

    DATABASE_URL=postgres://... .venv/bin/python bench/reconcile.py [--employees 100000] [--page-size 1000]

The Business Central sandbox runs with --employees N: N employees plus ~1,000 other master-data
records (accounts, cost centers, periods, suppliers, budgets...). One master-data sync fills the
ledger, then drift is planted behind the sync's back (/sandbox/drift: added, silently changed and
deleted employees) and one reconciliation is timed. It must find exactly the planted drift.

Prints the reconciliation's time, records/s and peak memory of the workbench process *during the
reconciliation* (Linux: /proc/self/clear_refs resets the high-water mark after the sync; the RSS
it starts from is printed too). Target: 100,000 records within 50 minutes, memory bounded.

Seeding 100k employees takes the sandbox ~2 minutes; the seeded store is kept in
.var/bench/ and copied for each run, so later runs start in seconds.
"""

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _setup import ROOT, django_with_fresh_db, peak_rss_mib, teardown


def status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def start_sandbox(data: Path, employees: int, today: str):
    from tests.conftest import free_port, wait_http

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "sandbox",
            "business_central",
            "--port",
            str(port),
            "--today",
            today,
            "--seed",
            "7",
            "--employees",
            str(employees),
            "--lines",
            "0",
            "--data",
            str(data),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/sandbox/health", 900)
    except Exception:
        proc.terminate()
        raise
    return proc, url


def copy_store(src: Path, dst: Path) -> None:
    """SQLite's backup API: a consistent copy, WAL included."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def seeded_store(employees: int, today: str, tmp: Path) -> Path:
    pristine = ROOT / ".var" / "bench" / f"business_central-seed7-{today}-{employees}.sqlite3"
    if not pristine.exists():
        pristine.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        building = tmp / "seeding.sqlite3"
        proc, _ = start_sandbox(building, employees, today)
        proc.terminate()
        proc.wait(30)
        copy_store(building, pristine)
        print(f"seeded the sandbox's store once: {time.perf_counter() - t0:.0f}s -> {pristine}")
    run_copy = tmp / "business_central.sqlite3"
    copy_store(pristine, run_copy)
    return run_copy


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--employees", type=int, default=100_000)
    ap.add_argument("--page-size", type=int, default=1000, help="the connection's page_size (BC allows up to 20,000)")
    ap.add_argument("--drift", type=int, default=10, help="records planted per kind (added, changed, deleted)")
    args = ap.parse_args()
    connection, name = django_with_fresh_db()
    tmp = Path(tempfile.mkdtemp())
    from tests.conftest import TODAY

    proc, url = start_sandbox(seeded_store(args.employees, TODAY.isoformat(), tmp), args.employees, TODAY.isoformat())
    try:
        from sync.jobs import run_job
        from sync.models import ReconciliationRun, SyncRun
        from sync.reconcile import run_reconciliation
        from tests.conftest import make_connections
        from workbench.models import Employee
        from workbench.streams import ORDER as MASTER_DATA_STREAMS

        erp, _ = make_connections(url, "http://127.0.0.1:9", page_size=args.page_size, timeout=60)
        t0 = time.perf_counter()
        sync = run_job(SyncRun.objects.create(connection=erp, job="master_data"))
        print(
            f"master-data sync (fills the ledger): {time.perf_counter() - t0:.1f}s, {sync.records_read:,} records, "
            f"status={sync.status} {sync.message[:200]}"
        )
        erp.refresh_from_db()

        # Drift the incremental sync cannot see, on employees away from each company's newest row.
        n = args.drift
        staff = list(Employee.objects.order_by("code").values_list("entity__code", "code")[: 4 * n])
        changed, deleted = staff[: 2 * n : 2], staff[1 : 2 * n : 2]
        post(
            f"{url}/sandbox/drift",
            {
                "add": [
                    {
                        "stream": "employees",
                        "entity": ("NW-US", "NW-DE", "NW-FR")[i % 3],
                        "code": f"X{i:07d}",
                        "name": f"Planted {i}",
                    }
                    for i in range(n)
                ],
                "change": [
                    {"stream": "employees", "entity": e, "code": c, "field": "name", "value": f"Renamed {c}"}
                    for e, c in changed
                ],
                "delete": [{"stream": "employees", "entity": e, "code": c} for e, c in deleted],
            },
        )
        expected = (
            {("employees", f"{('NW-US', 'NW-DE', 'NW-FR')[i % 3]}/X{i:07d}", "added") for i in range(n)}
            | {("employees", f"{e}/{c}", "changed") for e, c in changed}
            | {("employees", f"{e}/{c}", "deleted") for e, c in deleted}
        )

        import gc

        gc.collect()
        exact_peak = reset_peak()
        rss_before = status_mib("VmRSS")
        run = ReconciliationRun.objects.create(connection=erp, triggered_by="bench")
        t1 = time.perf_counter()
        run = run_reconciliation(run)
        seconds = time.perf_counter() - t1
        peak = status_mib("VmHWM")
        found = set(run.drift.values_list("stream", "key", "kind"))

        print(f"database: {connection.vendor}; page size {args.page_size}")
        print(
            f"reconciliation: status={run.status}; {run.compared:,} ERP records compared in {seconds:.1f}s "
            f"= {run.compared / seconds:,.0f} records/s"
        )
        print("  per stream: " + ", ".join(f"{s} {run.summary[s]['compared']:,}" for s in MASTER_DATA_STREAMS))
        print(
            f"  drift: {run.added} added, {run.changed} changed, {run.deleted} deleted, {run.unreadable} unreadable; "
            f"exactly the {len(expected)} planted: {found == expected}"
        )
        if found != expected:
            print(f"  missed: {sorted(expected - found)[:10]}  extra: {sorted(found - expected)[:10]}")
        print(f"  {run.message[:300]}")
        what = "peak during the reconciliation" if exact_peak else "process peak (could not reset it)"
        print(
            f"memory (workbench process): RSS {rss_before:.0f} MiB before, {what} {peak:.0f} MiB "
            f"(+{peak - rss_before:.0f} MiB); whole run incl. the sync {peak_rss_mib():.0f} MiB"
        )
    finally:
        proc.terminate()
        proc.wait(30)
        teardown(connection, name)


if __name__ == "__main__":
    main()
