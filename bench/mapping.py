"""Mapping rules at volume: impact preview over 100,000 open exceptions, and a save that resolves 10,000.

    DATABASE_URL=postgres://... .venv/bin/python bench/mapping.py --items 100000 --resolved 10000

Builds `--items` expense reports with one unknown cost center each (`--resolved` of them spelled
"SALE", the rest spread over 900 other unknown values, so 901 root-cause groups), through the real
upsert + validation path. Then times the impact preview of a rule (exact value and a pattern) and
the application of a saved "SALE -> SALES" rule: map, re-validate, resolve, queue for posting.
Targets: preview <= 1 s; 10,000 resolved and queued <= 30 s.
"""

import argparse
import time

from _setup import django_with_fresh_db, peak_rss_mib, teardown


def build(n: int, resolved: int):
    from django.db import transaction

    from tests.factories import master_data
    from workbench.models import Connection
    from workbench.services.documents import documents_upsert_from_source
    from workbench.services.validation import documents_validate

    master_data()
    Connection.objects.create(
        name="ERP", kind="business_central", role="erp", config={"base_url": "http://127.0.0.1:9"}
    )
    t = time.perf_counter()
    for start in range(0, n, 1000):
        recs = []
        for i in range(start, min(n, start + 1000)):
            cc = "SALE" if i < resolved else f"X{i % 900:04d}"
            recs.append(
                {
                    "external_id": f"R{i}",
                    "number": f"N{i}",
                    "name": "Trip",
                    "entity": "NW-US",
                    "employee_code": "E0001",
                    "employee_name": "Mary Smith",
                    "currency": "USD",
                    "total": "120.00",
                    "version": "1",
                    "approval_status": "approved",
                    "lines": [
                        {
                            "external_id": f"L{i}",
                            "date": "2026-11-10",
                            "category": "TAXI",
                            "category_name": "Taxi",
                            "amount": "120.00",
                            "currency": "USD",
                            "gl_account": "8110",
                            "cost_center": cc,
                            "tax_code": "EXEMPT",
                        }
                    ],
                }
            )
        with transaction.atomic():
            docs = documents_upsert_from_source(system="concur", records=recs).created
            documents_validate(documents=docs)
    print(f"set-up: {n:,} reports with an unknown cost center in {time.perf_counter() - t:.1f}s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--resolved", type=int, default=10000)
    args = ap.parse_args()
    connection, name = django_with_fresh_db()
    try:
        from django.contrib.auth import get_user_model

        from workbench.models import ExceptionItem, LegalEntity, MappingRule
        from workbench.services.mapping_runs import mapping_run_execute
        from workbench.services.mappings import mapping_impact, mapping_rule_save

        build(args.items, args.resolved)
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
        print(f"open exceptions: {ExceptionItem.objects.filter(status='open').count():,}")
        entity = LegalEntity.objects.get(code="NW-US")
        for label, rule in (
            ("exact value", MappingRule(field="cost_center", entity=entity, source_value="SALE", target_value="SALES")),
            ("pattern", MappingRule(field="cost_center", pattern="SAL.?", target_value="SALES")),
        ):
            times = []
            for _ in range(5):
                t = time.perf_counter()
                impact = mapping_impact(rule)
                times.append(time.perf_counter() - t)
            print(
                f"impact preview ({label}): {impact.items:,} items on {impact.documents:,} documents; "
                f"best {min(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms"
            )
        admin = get_user_model().objects.create_superuser("bench", "b@example.com", "x")
        t = time.perf_counter()
        run = mapping_rule_save(
            rule=MappingRule(field="cost_center", entity=entity, source_value="SALE", target_value="SALES"),
            actor=admin,
            reason="bench",
        )
        run = mapping_run_execute(run)
        elapsed = time.perf_counter() - t
        print(
            f"save + apply: {run.resolved:,} exceptions resolved, {run.queued_for_posting:,} reports queued for posting "
            f"in {elapsed:.1f}s ({run.resolved / elapsed:,.0f}/s)"
        )
        print(f"peak memory: {peak_rss_mib():.0f} MiB")
    finally:
        teardown(connection, name)


if __name__ == "__main__":
    main()
