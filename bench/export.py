"""Queue exports of N items: peak memory growth and rows/s, CSV and XLSX, through the real code path.

    DATABASE_URL=postgres://... .venv/bin/python bench/export.py --rows 100000 [--keepdb]

Seeds N exception items (bench/queue_page.py's data set), then measures, each in a fresh child process
(so the seeding's own peak does not hide the export's):
  - CSV streamed by `/queue/export.csv` (threshold raised so the request itself streams every row),
    read chunk by chunk as a client would;
  - CSV and XLSX as the background job a request above EXPORT_BACKGROUND_ROWS starts: the request
    (302 to /jobs/<id>/), then `work_job_run` in-process, as the worker runs it;
and, as a reference, PostgreSQL's `COPY (SELECT ...) TO STDOUT` of the same rows and columns.
Target: peak memory growth under 150 MB per export.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time

from _setup import django_with_fresh_db, teardown

PARAMS = {"status": ""}  # every item, open or not: the biggest export a person can ask for


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sampler(threading.Thread):
    """Resident memory now (not the process's all-time peak), sampled every 10 ms: its highest value."""

    def __init__(self):
        super().__init__(daemon=True)
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start_mib = self.now()
        self.peak = self.start_mib
        self.running = True

    def now(self) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page / 2**20

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.now())
            time.sleep(0.01)


def measure(mode: str) -> dict:
    """Run in a child process on the kept database: one export, its time, rows, and peak RSS growth."""
    connection, _ = django_with_fresh_db(keepdb=True)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from workbench import jobs
    from workbench.export_sources import export_source
    from workbench.models import WorkJob
    from workbench.services import work_jobs

    jobs.enqueue_on_commit = lambda name, **kw: None  # the bench runs the job itself, no broker
    settings.WORK_JOB_DIR.mkdir(parents=True, exist_ok=True)
    user = get_user_model().objects.get(username="analyst0")
    client = Client()
    client.force_login(user)
    client.get("/queue/", {"q": "warm-up"})  # URL resolver, templates, openpyxl import: not the export's
    import gc

    import openpyxl  # noqa: F401

    gc.collect()
    base = rss_mib()
    sampler = Sampler()
    sampler.start()
    t = time.perf_counter()
    if mode == "copy":
        from django.http import QueryDict

        from workbench.export_sources import queue_items, queue_values

        qs = queue_values(queue_items(user, QueryDict("status=")))  # the same rows, columns and order
        sql, params = qs.query.sql_with_params()
        size = rows = 0
        with connection.cursor() as cur:
            with cur.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
                for block in copy:
                    size += len(block)
                    rows += bytes(block).count(b"\n")
    elif mode == "stream-csv":
        settings.EXPORT_BACKGROUND_ROWS = 10**9
        response = client.get("/queue/export.csv", PARAMS)
        assert response.status_code == 200, response.status_code
        size = rows = 0
        for chunk in response.streaming_content:
            size += len(chunk)
            rows += chunk.count(b"\n")
        rows -= 1  # the header
    else:
        fmt = mode.split("-")[1]
        settings.EXPORT_BACKGROUND_ROWS = 0  # whatever --rows: the background path
        response = client.get(f"/queue/export.{fmt}", PARAMS)
        assert response.status_code == 302, response.status_code
        job = WorkJob.objects.latest("id")
        assert work_jobs.work_job_run(job.pk) == "done", WorkJob.objects.get(pk=job.pk).message
        job.refresh_from_db()
        rows, size = job.done, os.path.getsize(job.file_path)
        os.remove(job.file_path)
    seconds = time.perf_counter() - t
    sampler.running = False
    sampler.join()
    expected = export_source("queue", user, "status=").count()
    return {
        "mode": mode,
        "rows": rows,
        "expected": expected,
        "seconds": seconds,
        "mib": sampler.peak - sampler.start_mib,
        "maxrss_mib": rss_mib() - base,
        "bytes": size,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--keepdb", action="store_true", help="keep the seeded database for the next run")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    connection, name = django_with_fresh_db(keepdb=args.keepdb)  # children reuse it (keepdb) either way
    try:
        from queue_page import seed

        from workbench.models import ExceptionItem

        t = time.perf_counter()
        if not ExceptionItem.objects.exists():
            seed(args.rows)
            with connection.cursor() as cur:
                cur.execute("ANALYZE")
        args.rows = ExceptionItem.objects.count()
        print(f"seeded {args.rows} items in {time.perf_counter() - t:.0f}s")
        connection.close()
        results = {}
        for mode in ["copy", "stream-csv", "job-csv", "job-xlsx"]:
            out = subprocess.run(
                [sys.executable, __file__, "--measure", mode], capture_output=True, text=True, check=False
            )
            if out.returncode:
                print(out.stderr[-3000:])
                raise SystemExit(f"{mode} failed")
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        ref = results["copy"]
        print(f"queue export, {args.rows} items ({ref['rows']} rows with status=any):")
        for mode, r in results.items():
            rate = r["rows"] / r["seconds"]
            ratio = "" if mode == "copy" else f"  {r['seconds'] / ref['seconds']:5.1f}x the COPY time"
            ok = "" if mode == "copy" or r["rows"] == r["expected"] else f"  ROWS MISMATCH (expected {r['expected']})"
            print(
                f"  {mode:11s} {r['rows']:7d} rows in {r['seconds']:6.1f} s = {rate:8.0f} rows/s, "
                f"{r['bytes'] / 2**20:6.1f} MiB out, peak memory growth {r['mib']:6.1f} MiB "
                f"(max RSS {r['maxrss_mib']:+.1f}){ratio}{ok}"
            )
        worst = max(r["mib"] for m, r in results.items() if m != "copy")
        print(f"  worst peak memory growth {worst:.1f} MiB (target < 150 MB)")
    finally:
        if not args.keepdb:
            teardown(connection, name)


if __name__ == "__main__":
    main()
