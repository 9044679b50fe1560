"""Pull + validate + queue N expense lines from the expense sandbox (a separate process).

    DATABASE_URL=postgres://... .venv/bin/python bench/pull_validate.py --lines 50000

Prints lines/s over the expense pull (read, upsert, run every rule, raise exception items, queue
postings, acknowledge) and the process's peak memory. Target: >= 1,000 lines/s on 2 cores.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import ROOT, django_with_fresh_db, peak_rss_mib, teardown


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=50000)
    args = ap.parse_args()
    connection, name = django_with_fresh_db()
    tmp = Path(tempfile.mkdtemp())
    from tests.conftest import TODAY, free_port, wait_http

    procs = []
    urls = {}
    for kind in ("business_central", "concur"):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "manage.py"),
                    "sandbox",
                    kind,
                    "--port",
                    str(port),
                    "--today",
                    TODAY.isoformat(),
                    "--lines",
                    str(args.lines),
                    "--employees",
                    "200",
                    "--data",
                    str(tmp / f"{kind}.sqlite3"),
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
        )
        urls[kind] = f"http://127.0.0.1:{port}"
    try:
        for url in urls.values():
            wait_http(f"{url}/sandbox/health", 300)
        from sync.jobs import run_job
        from sync.models import SyncRun
        from tests.conftest import make_connections
        from workbench.models import DocumentLine, ExceptionItem, OutboundWrite

        erp, expense = make_connections(urls["business_central"], urls["concur"], page_size=100)
        t0 = time.perf_counter()
        run_job(SyncRun.objects.create(connection=erp, job="master_data"))
        t1 = time.perf_counter()
        result = run_job(SyncRun.objects.create(connection=expense, job="expense_pull"))
        t2 = time.perf_counter()
        lines = DocumentLine.objects.count()
        print(f"master data pull: {t1 - t0:.2f}s")
        print(f"expense pull: status={result.status} {result.message[:200]}")
        print(f"lines pulled+validated+queued: {lines} in {t2 - t1:.1f}s = {lines / (t2 - t1):,.0f} lines/s")
        print(f"exception items: {ExceptionItem.objects.count()}, postings queued: {OutboundWrite.objects.count()}")
        print(f"peak memory (workbench process): {peak_rss_mib():.0f} MiB")
    finally:
        for p in procs:
            p.terminate()
        teardown(connection, name)


if __name__ == "__main__":
    main()
