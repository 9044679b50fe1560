"""Exception queue page with N items: server time p50/p95 and query count per request.

    DATABASE_URL=postgres://... .venv/bin/python bench/queue_page.py --items 100000 [--view groups]

Drives the real view through Django's test client (URL routing, middleware, filters, template),
over a mix of filters and pages. Target: p95 <= 150 ms, constant query count (no N+1).
``--view groups`` measures the "By root cause" view instead (9 in 10 items share one of ~960
root causes, the rest none).
"""

import argparse
import statistics
import time
import uuid
from datetime import timedelta
from decimal import Decimal

from _setup import django_with_fresh_db, peak_rss_mib, teardown


def seed(n_items: int) -> None:
    import random

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from tests.factories import master_data
    from workbench.models import Document, DocumentLine, ExceptionGroup, ExceptionItem, UserScope
    from workbench.roles import ANALYST
    from workbench.rules import CODES
    from workbench.services.exception_items import search_text

    rng = random.Random(1)
    entities = [master_data("NW-US", "USD"), master_data("NW-DE", "EUR"), master_data("NW-FR", "EUR")]
    users = [get_user_model().objects.create_user(f"analyst{i}") for i in range(5)]
    for user in users:  # finance analysts who see every entity (issue 10: no role, no screen)
        user.groups.add(Group.objects.get(name=ANALYST))
        UserScope.objects.create(user=user, all_entities=True)
    codes = [c for c in CODES if c not in ("CONNECTOR_UNAVAILABLE",)]
    now = timezone.now()
    ExceptionGroup.objects.bulk_create(
        [
            ExceptionGroup(
                root_cause_key=f"{c}:{e.code}:V{k:02d}", code=c, title=f"{CODES[c].title}: V{k:02d} ({e.code})"
            )
            for c in codes
            for e in entities
            for k in range(20)
        ]
    )
    groups = {g.root_cause_key: g for g in ExceptionGroup.objects.all()}
    batch = 5000
    for start in range(0, n_items, batch):
        docs = []
        for i in range(start, min(n_items, start + batch)):
            e = entities[i % 3]
            docs.append(
                Document(
                    correlation_id=uuid.uuid4(),
                    source_system="concur",
                    source_id=f"D{i:07d}",
                    number=f"R{i:06d}",
                    name=f"Trip {i}",
                    entity=e,
                    entity_code=e.code,
                    party_code=f"E{i % 200:04d}",
                    party_name=f"Employee {i % 200}",
                    currency=e.currency,
                    total=Decimal("123.45"),
                )
            )
        Document.objects.bulk_create(docs, batch_size=2000)
        lines = [
            DocumentLine(
                document=d,
                line_no=1,
                amount=Decimal("123.45"),
                currency=d.currency,
                date=now.date(),
                description="Hotel",
                cost_center="SALE",
            )
            for d in docs
        ]
        DocumentLine.objects.bulk_create(lines, batch_size=2000)
        items = []
        for d, ln in zip(docs, lines, strict=True):
            code = rng.choice(codes)
            spec = CODES[code]
            opened = now - timedelta(hours=rng.randint(0, 24 * 20))
            status = rng.choices(["open", "in_progress", "waiting", "resolved", "overridden"], [60, 10, 5, 20, 5])[0]
            group = groups[f"{code}:{d.entity_code}:V{rng.randrange(20):02d}"] if rng.random() < 0.9 else None
            items.append(
                ExceptionItem(
                    group=group,
                    root_cause_key=group.root_cause_key if group else "",
                    fingerprint=f"{code}:doc{d.pk}",
                    code=code,
                    category=spec.category,
                    kind=spec.kind,
                    severity=spec.severity,
                    status=status,
                    message=f"Line 1: cost center 'SALE' does not exist in the ERP for {d.entity_code}.",
                    document=d,
                    line=ln,
                    entity=d.entity,
                    amount_at_risk=ln.amount,
                    currency=d.currency,
                    owner_team=spec.owner_team,
                    assignee=rng.choice(users + [None] * 5),
                    opened_at=opened,
                    sla_due_at=opened + timedelta(hours=spec.sla_hours),
                    # The period's close for this document: a few already near (close risk first in the queue).
                    close_due_at=now + timedelta(hours=rng.randint(-48, 24 * 40)),
                    correlation_id=d.correlation_id,
                    search=search_text(
                        code, f"Line 1: cost center 'SALE' does not exist in the ERP for {d.entity_code}.", d
                    ),
                )
            )
        ExceptionItem.objects.bulk_create(items, batch_size=2000)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--verbose", action="store_true", help="per filter mix")
    ap.add_argument("--keepdb", action="store_true", help="keep the seeded database for the next run")
    ap.add_argument("--view", choices=["items", "groups"], default="items")
    args = ap.parse_args()
    connection, name = django_with_fresh_db(keepdb=args.keepdb)
    try:
        t = time.perf_counter()
        from workbench.models import ExceptionItem

        if not ExceptionItem.objects.exists():
            seed(args.items)
        with connection.cursor() as cur:
            if connection.vendor == "postgresql":
                cur.execute("ANALYZE")
        print(f"seeded {args.items} items in {time.perf_counter() - t:.0f}s")
        from django.contrib.auth import get_user_model
        from django.db import reset_queries
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        client = Client()
        client.force_login(get_user_model().objects.get(username="analyst0"))
        scenarios = [
            {},
            {"category": "master_data"},
            {"code": "CLOSED_PERIOD"},
            {"entity": "NW-DE"},
            {"status": "open"},
            {"assignee": "me"},
            {"age": "7d+"},
            {"q": "R00123"},
            {"q": "Employee 17"},
            {"page": "40"},
            {"category": "policy", "entity": "NW-FR", "page": "3"},
            {"status": "resolved", "code": "INVALID_TAX_CODE"},
        ]
        if args.view == "groups":
            scenarios = [
                {},
                {"group_sort": "count"},
                {"group_sort": "oldest"},
                {"category": "master_data"},
                {"entity": "NW-DE"},
                {"status": "open"},
                {"age": "7d+"},
                {"q": "Employee 17"},
                {"page": "10"},
                {"code": "CLOSED_PERIOD"},
                {"category": "policy", "entity": "NW-FR", "group_sort": "count"},
                {"status": "resolved"},
            ]
            scenarios = [{"view": "groups", **p} for p in scenarios]
        for params in scenarios:  # warm-up: template compilation and PostgreSQL's caches, not timed
            client.get("/queue/", params)
        times, queries, per = [], set(), {}
        for i in range(args.requests):
            params = scenarios[i % len(scenarios)]
            htmx = {"HTTP_HX_REQUEST": "true"} if i % 2 else {}
            reset_queries()
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get("/queue/", params, **htmx)
                ms = (time.perf_counter() - t0) * 1000
                times.append(ms)
                per.setdefault(str(params), []).append(ms)
            assert response.status_code == 200, response.status_code
            queries.add(len(ctx.captured_queries))
        times.sort()
        p50, p95 = statistics.median(times), times[int(len(times) * 0.95) - 1]
        print(
            f"queue page ({args.view} view), {args.items} items, {args.requests} requests over {len(scenarios)} filter mixes:"
        )
        print(f"  server time p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {times[-1]:.1f} ms")
        print(f"  queries per request: {sorted(queries)}")
        print(f"  peak memory: {peak_rss_mib():.0f} MiB")
        if args.verbose:
            for k, v in per.items():
                print(f"    {max(v):7.1f} ms max  {statistics.median(v):7.1f} ms median  {k}")
    finally:
        if not args.keepdb:
            teardown(connection, name)


if __name__ == "__main__":
    main()
