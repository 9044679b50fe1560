"""KPI dashboard and /api/kpis/ with N items: server time p50/p95 and query count per request.

    DATABASE_URL=postgres://... .venv/bin/python bench/dashboard.py --items 100000

Seeds the queue benchmark's world (bench/queue_page.py), then spreads it over the 12-week window:
documents arrive, are approved and posted on different days, resolved items get their resolution
time. Every number is aggregated in the database, so the query count is constant in N.
"""

import argparse
import statistics
import time

from _setup import django_with_fresh_db, peak_rss_mib, teardown
from queue_page import seed


def spread() -> None:
    from datetime import timedelta

    from django.db.models import DurationField, ExpressionWrapper, F, IntegerField, Value
    from django.db.models.functions import Cast, Mod

    from workbench.models import Document, ExceptionItem

    def hours(expr):
        return ExpressionWrapper(Cast(expr, IntegerField()) * Value(timedelta(hours=1)), output_field=DurationField())

    # Items: opened over 84 days instead of 20; resolved ones a day or so later.
    ExceptionItem.objects.update(opened_at=F("opened_at") - hours(Mod(F("id"), 1500)))
    ExceptionItem.objects.filter(status__in=["resolved", "overridden"]).update(
        resolved_at=F("opened_at") + hours(Mod(F("id"), 97) + 1)
    )
    Document.objects.update(created_at=F("created_at") - hours(Mod(F("id"), 2000)))
    # Two documents in three approved; one in two of those posted some hours later.
    Document.objects.exclude(id__regex=r"[05]$").update(approved_at=F("created_at") + hours(Mod(F("id"), 7)))
    Document.objects.filter(approved_at__isnull=False, id__regex=r"[13579]$").update(
        posted_at=F("approved_at") + hours(Mod(F("id"), 53) + 1), financial_status="posted"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--keepdb", action="store_true", help="keep the seeded database for the next run")
    args = ap.parse_args()
    connection, name = django_with_fresh_db(keepdb=args.keepdb)
    try:
        t = time.perf_counter()
        from workbench.models import ExceptionItem

        if not ExceptionItem.objects.exists():
            seed(args.items)
            spread()
        with connection.cursor() as cur:
            if connection.vendor == "postgresql":
                cur.execute("ANALYZE")
        print(f"seeded {args.items} items in {time.perf_counter() - t:.0f}s")
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        client = Client()
        client.force_login(get_user_model().objects.get(username="analyst0"))
        scenarios = [
            ("/dashboard/", {}),
            ("/dashboard/", {"entity": "NW-DE"}),
            ("/dashboard/", {"code": "CLOSED_PERIOD"}),
            ("/api/kpis/", {}),
            ("/api/kpis/", {"source": "concur", "entity": "NW-FR"}),
        ]
        for path, params in scenarios:  # warm-up, not timed
            assert client.get(path, params).status_code == 200
        times, queries = [], set()
        for i in range(args.requests):
            path, params = scenarios[i % len(scenarios)]
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get(path, params)
                times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.status_code
            queries.add(len(ctx.captured_queries))
        times.sort()
        p50, p95 = statistics.median(times), times[int(len(times) * 0.95) - 1]
        print(f"KPI dashboard and API, {args.items} items, {args.requests} requests over {len(scenarios)} mixes:")
        print(f"  server time p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {times[-1]:.1f} ms")
        print(f"  queries per request: {sorted(queries)}; peak RSS {peak_rss_mib():.0f} MiB")
    finally:
        if not args.keepdb:
            teardown(connection, name)


if __name__ == "__main__":
    main()
