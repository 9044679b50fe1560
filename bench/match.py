"""Three-way match at volume: N invoice lines against N PO lines and their receipts, on the real path.

    DATABASE_URL=postgres://... .venv/bin/python bench/match.py --lines 100000

Builds N PO lines (4 per PO), their goods receipts (one receipt document per PO line, some partial)
and N invoice lines (4 per invoice; ~3% priced above the PO, ~2% invoicing more than received, a few
duplicates), then times `documents_validate` over the invoices in pages of 1,000, as the procurement
pull does: every invoice rule (supplier, duplicates, the match), exception items raised, line match
results saved. Prints lines/s and the process's peak memory. Target: >= 5,000 lines/s on 2 cores.
"""

import argparse
import random
import time
import uuid
from datetime import date
from decimal import Decimal

from _setup import django_with_fresh_db, peak_rss_mib, teardown

PAGE = 1000
PER_DOC = 4


def build(n_lines: int):
    from workbench.models import Document, DocumentLine, LegalEntity, Supplier
    from workbench.rules.p2p_context import number_key

    rng = random.Random(7)
    entity = LegalEntity.objects.create(code="NW-US", name="Northwind Traders Inc.", currency="USD")
    suppliers = [Supplier(entity=entity, code=f"V{10000 + i}", name=f"Supplier {i}") for i in range(200)]
    Supplier.objects.bulk_create(suppliers)
    n_docs = n_lines // PER_DOC
    today = date(2026, 11, 20)

    def docs(kind, prefix, **extra):
        return [
            Document(
                kind=kind,
                correlation_id=uuid.uuid4(),
                source_system="bench",
                source_id=f"{prefix}{i}",
                number=f"{prefix}{i}",
                entity=entity,
                entity_code="NW-US",
                currency="USD",
                total=Decimal(0),
                document_date=today,
                **{k: (v(i) if callable(v) else v) for k, v in extra.items()},
            )
            for i in range(n_docs)
        ]

    t = time.perf_counter()
    pos = Document.objects.bulk_create(
        docs(
            "purchase_order",
            "PO",
            party_code=lambda i: f"V{10000 + i % 200}",
            po_number=lambda i: f"PO{i}",
            financial_status="posted",
            business_status="approved",
        ),
        batch_size=5000,
    )
    prices = [Decimal(rng.randint(1000, 90000)) / 100 for _ in range(n_lines)]
    qtys = [Decimal(rng.choice([1, 2, 4, 5, 10, 20])) for _ in range(n_lines)]
    po_lines = DocumentLine.objects.bulk_create(
        [
            DocumentLine(
                document=pos[i // PER_DOC],
                line_no=i % PER_DOC + 1,
                amount=qtys[i] * prices[i],
                currency="USD",
                quantity=qtys[i],
                unit_price=prices[i],
                gl_account="6110",
                cost_center="ENG",
                description=f"Item {i}",
            )
            for i in range(n_lines)
        ],
        batch_size=5000,
    )
    # Receipts: one receiving transaction per PO line; 4% of them partial.
    received = [q if rng.random() > 0.04 else (q / 2).quantize(Decimal("1")) for q in qtys]
    rcpts = Document.objects.bulk_create(
        [
            Document(
                kind="goods_receipt",
                correlation_id=uuid.uuid4(),
                source_system="bench",
                source_id=f"R{i}",
                number=f"R{i}",
                entity=entity,
                entity_code="NW-US",
                currency="XXX",
                total=0,
                document_date=today,
                po_number=f"PO{i // PER_DOC}",
                financial_status="posted",
                parent=pos[i // PER_DOC],
            )
            for i in range(n_lines)
        ],
        batch_size=5000,
    )
    DocumentLine.objects.bulk_create(
        [
            DocumentLine(
                document=rcpts[i],
                line_no=1,
                amount=0,
                currency="XXX",
                quantity=received[i],
                po_line=po_lines[i],
                po_line_no=i % PER_DOC + 1,
            )
            for i in range(n_lines)
        ],
        batch_size=5000,
    )
    for ln, q in zip(po_lines, received, strict=True):
        ln.received_quantity = q
    DocumentLine.objects.bulk_update(po_lines, ["received_quantity"], batch_size=5000)
    # Invoices: one per PO, same lines; some priced higher, some for more than was ordered.
    inv_docs, inv_lines = [], []
    for d in range(n_docs):
        number = f"INV-{d:07d}" if rng.random() > 0.002 else f"INV-{d - 1:07d}"  # a few duplicates
        lines = []
        for j in range(PER_DOC):
            i = d * PER_DOC + j
            price, qty = prices[i], qtys[i]
            r = rng.random()
            if r < 0.03:
                price = (price * Decimal("1.08")).quantize(Decimal("0.01"))
            elif r < 0.05:
                qty += 2
            lines.append((j + 1, qty, price))
        total = sum(q * p for _, q, p in lines)
        inv_docs.append(
            Document(
                kind="supplier_invoice",
                correlation_id=uuid.uuid4(),
                source_system="bench",
                source_id=f"I{d}",
                number=number,
                number_key=number_key(number),
                entity=entity,
                entity_code="NW-US",
                currency="USD",
                total=total,
                document_date=today,
                party_code=f"V{10000 + d % 200}",
                po_number=f"PO{d}",
                business_status="approved",
            )
        )
        inv_lines.append(lines)
    invoices = Document.objects.bulk_create(inv_docs, batch_size=5000)
    DocumentLine.objects.bulk_create(
        [
            DocumentLine(
                document=inv,
                line_no=no,
                po_line_no=no,
                quantity=q,
                unit_price=p,
                amount=q * p,
                currency="USD",
                description="x",
            )
            for inv, lines in zip(invoices, inv_lines, strict=True)
            for no, q, p in lines
        ],
        batch_size=5000,
    )
    print(
        f"set-up: {n_lines:,} PO lines, {n_lines:,} receipts, {n_lines:,} invoice lines in {time.perf_counter() - t:.1f}s"
    )
    return [d.pk for d in invoices]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100000)
    args = ap.parse_args()
    connection, name = django_with_fresh_db()
    try:
        from django.db import transaction

        from workbench.models import Document, DocumentLine, ExceptionItem
        from workbench.rules.context import MasterDataContext
        from workbench.services.validation import documents_validate

        ids = build(args.lines)
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
        ctx = MasterDataContext.load()
        t = time.perf_counter()
        clean = 0
        for i in range(0, len(ids), PAGE):
            with transaction.atomic():
                docs = list(Document.objects.filter(pk__in=ids[i : i + PAGE]))
                clean += len(documents_validate(documents=docs, ctx=ctx))
        elapsed = time.perf_counter() - t
        lines = DocumentLine.objects.filter(document__kind="supplier_invoice").count()
        matched = DocumentLine.objects.filter(document__kind="supplier_invoice", match_status="matched").count()
        print(f"matched {lines:,} invoice lines in {elapsed:.1f}s = {lines / elapsed:,.0f} lines/s")
        print(
            f"  lines matched: {matched:,}; invoices clean: {clean:,} of {len(ids):,}; exception items: "
            + ", ".join(
                f"{c} {n}"
                for c, n in sorted(
                    ExceptionItem.objects.values_list("code")
                    .annotate(n=__import__("django.db.models", fromlist=["Count"]).Count("id"))
                    .values_list("code", "n")
                )
            )
        )
        print(f"peak memory: {peak_rss_mib():.0f} MiB")
    finally:
        teardown(connection, name)


if __name__ == "__main__":
    main()
