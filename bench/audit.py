"""The audit chain's cost: writing history with its audit copy, sealing, and verifying.

    DATABASE_URL=postgres://... .venv/bin/python bench/audit.py --events 100000

Reference in the same run: the same document events inserted without their audit copies (the
plain QuerySet.bulk_create the append-only manager wraps). Then seals every record into the chain
and runs `audit_verify` over all of them (each history row re-read and re-hashed).
Targets: history writes with audit copies <= 3x the bare insert (a second row per row); seal >= 10,000 records/s;
verify >= 10,000 records/s.
"""

import argparse
import time
import uuid

from _setup import django_with_fresh_db, peak_rss_mib, teardown


def events(doc, n, start):
    from django.utils import timezone

    from workbench.models import DocumentEvent

    now = timezone.now()
    return [
        DocumentEvent(
            document=doc,
            at=now,
            system="bench",
            action="posted",
            message=f"event {i}",
            correlation_id=doc.correlation_id,
            data={"i": i, "erp": f"PI-{i:06d}"},
        )
        for i in range(start, start + n)
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    connection, name = django_with_fresh_db()
    try:
        from django.db import models, transaction

        from tests.factories import master_data
        from workbench.models import AuditRecord, Document, DocumentEvent
        from workbench.services.audit import audit_seal_all, audit_verify

        entity = master_data()
        doc = Document.objects.create(
            kind="expense_report", source_system="bench", source_id="b1", number="B1", entity=entity,
            entity_code=entity.code, currency="USD", total=0, correlation_id=uuid.uuid4(),
        )  # fmt: skip
        n, batch = args.events, 1000

        def timed(insert):
            t = time.perf_counter()
            for start in range(0, n, batch):
                with transaction.atomic():
                    insert(events(doc, min(batch, n - start), start))
            return time.perf_counter() - t

        bare = timed(lambda objs: models.QuerySet.bulk_create(DocumentEvent.objects.all(), objs))
        with_audit = timed(lambda objs: DocumentEvent.objects.bulk_create(objs))
        records = AuditRecord.objects.count()
        t = time.perf_counter()
        sealed = audit_seal_all()
        seal = time.perf_counter() - t
        t = time.perf_counter()
        verdict = audit_verify()
        verify = time.perf_counter() - t
        print(f"reference: {n:,} document events, bare bulk insert: {bare:.2f} s ({n / bare:,.0f}/s)")
        print(f"with audit copies: {with_audit:.2f} s ({n / with_audit:,.0f}/s), ratio {with_audit / bare:.2f}x")
        print(f"seal: {sealed:,} records in {seal:.2f} s ({sealed / seal:,.0f}/s)")
        print(
            f"verify: {verdict.checked:,} records in {verify:.2f} s ({verdict.checked / verify:,.0f}/s), "
            f"{'intact' if verdict.ok else verdict.broken[0]}; {records:,} audit records in all"
        )
        print(f"peak memory {peak_rss_mib():.0f} MiB ({connection.vendor})")
    finally:
        teardown(connection, name)


if __name__ == "__main__":
    main()
