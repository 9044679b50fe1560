"""The alert evaluator over N exception items: time and query count per run (it runs every minute).

    DATABASE_URL=postgres://... .venv/bin/python bench/alerts_evaluate.py --items 100000

Seeds the queue benchmark's world (bench/queue_page.py), adds rules that match a large share of it
(SLA breached, an amount in one currency, backlog growth) and one connection outage, then runs the
evaluator a few times. Target: a run well inside its minute, and a query count bounded by the
changes per run (MAX_CHANGES_PER_RUN per rule), not by the number of items.
"""

import argparse
import time
from datetime import timedelta
from decimal import Decimal

from _setup import django_with_fresh_db, teardown
from queue_page import seed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=4)
    args = ap.parse_args()
    connection, name = django_with_fresh_db()
    try:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.db import reset_queries
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from workbench.models import AlertFiring, Connection, ExceptionItem, Notification
        from workbench.roles import ANALYST, ENGINEER
        from workbench.services import alerts
        from workbench.services.alerts import MAX_CHANGES_PER_RUN, alert_rule_save, alerts_evaluate

        t = time.perf_counter()
        seed(args.items)
        with connection.cursor() as cur:
            if connection.vendor == "postgresql":
                cur.execute("ANALYZE")
        print(f"seeded {args.items} items in {time.perf_counter() - t:.0f}s")
        admin = get_user_model().objects.create_superuser("bench-admin")
        analysts, engineers = Group.objects.get(name=ANALYST), Group.objects.get(name=ENGINEER)
        Connection.objects.create(
            name="ERP",
            kind="business_central",
            role="erp",
            health="down",
            down_since=timezone.now() - timedelta(hours=1),
        )
        for values in [
            {"name": "Late", "condition": "sla_breached"},
            {"name": "Large EUR", "condition": "amount_above", "amount": Decimal("100"), "currency": "EUR"},
            {"name": "Backlog", "condition": "backlog_growth", "hours": 1, "growth": 10},
            {"name": "ERP down", "condition": "connection_down", "minutes": 10, "target_role": engineers},
        ]:
            alert_rule_save(values={"target": "role", "target_role": analysts, **values}, actor=admin)
        matching = ExceptionItem.objects.filter(
            status__in=["open", "in_progress", "waiting"], sla_due_at__lt=timezone.now()
        ).count()
        print(f"{matching} active items past their SLA; at most {MAX_CHANGES_PER_RUN} fire per rule and run")
        for run in range(1, args.runs + 1):
            reset_queries()
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                summary = alerts_evaluate()
                ms = (time.perf_counter() - t0) * 1000
            print(f"  run {run}: {ms:.0f} ms, {len(ctx.captured_queries)} queries, {summary}")
        # The detection alone (what a quiet minute costs): no changes allowed, so nothing fires.
        alerts.MAX_CHANGES_PER_RUN = 0
        reset_queries()
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            alerts_evaluate()
            ms = (time.perf_counter() - t0) * 1000
        print(f"  detection only: {ms:.0f} ms, {len(ctx.captured_queries)} queries")
        print(f"firings {AlertFiring.objects.count()}, inbox messages {Notification.objects.count()}")
    finally:
        teardown(connection, name)


if __name__ == "__main__":
    main()
