"""Persist what the three-way match found: each invoice line's PO line and status, the invoice's status."""

from __future__ import annotations

from django.db import connection

from workbench.models import Document, DocumentLine


def match_results_save(*, results: dict, clean: set[int]) -> None:
    """`results`: invoice id -> [(line, LineResult)] from the rules' context; consumed (cleared) here."""
    lines, docs_exception, docs_ok = [], [], []
    for doc_id, pairs in results.items():
        bad = False
        for ln, res in pairs:
            status = "matched" if res.status == "matched" else "exception"
            bad = bad or status == "exception"
            ln.match_status = status
            lines.append(ln)
        (docs_exception if bad else docs_ok).append(doc_id)
    if lines:
        _save_lines([(ln.pk, ln.po_line_id, ln.match_status) for ln in lines])
    if docs_exception:
        Document.objects.filter(pk__in=docs_exception).exclude(match_status="matched").update(match_status="exception")
    if docs_ok:
        # Matched lines; the invoice counts as "matched" (and consumes PO quantities) when it goes to posting.
        Document.objects.filter(pk__in=docs_ok, match_status="exception").update(match_status="")
    results.clear()


def _save_lines(rows: list[tuple[int, int | None, str]]) -> None:
    """Each invoice line's PO line and match status. On PostgreSQL one statement (three arrays) per
    5,000 lines, touching only rows that change (the match benchmark's hot spot); the ORM elsewhere."""
    if connection.vendor != "postgresql":
        DocumentLine.objects.bulk_update(
            [DocumentLine(pk=a, po_line_id=b, match_status=c) for a, b, c in rows],
            ["po_line", "match_status"],
            batch_size=500,
        )
        return
    table = DocumentLine._meta.db_table
    with connection.cursor() as cur:
        for i in range(0, len(rows), 5000):
            chunk = rows[i : i + 5000]
            cur.execute(
                f'UPDATE "{table}" AS l SET po_line_id = v.po, match_status = v.st '
                "FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS v(id, po, st) "
                "WHERE l.id = v.id AND (l.po_line_id IS DISTINCT FROM v.po OR l.match_status <> v.st)",
                [[a for a, _, _ in chunk], [b for _, b, _ in chunk], [c for _, _, c in chunk]],
            )
