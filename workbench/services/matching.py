"""Persist what the three-way match found: each invoice line's PO line and status, the invoice's status."""

from __future__ import annotations

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
        DocumentLine.objects.bulk_update(lines, ["match_status", "po_line"], batch_size=1000)
    if docs_exception:
        Document.objects.filter(pk__in=docs_exception).exclude(match_status="matched").update(match_status="exception")
    if docs_ok:
        # Matched lines; the invoice counts as "matched" (and consumes PO quantities) when it goes to posting.
        Document.objects.filter(pk__in=docs_ok, match_status="exception").update(match_status="")
    results.clear()
