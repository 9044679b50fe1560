"""The auditor's screens: the audit trail (and its export with the chain head), and the overrides report."""

import csv

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render

from workbench.export_sources import override_list, period_bounds
from workbench.exports import FORMATS
from workbench.models import AuditRecord
from workbench.services.audit import audit_seal_all
from workbench.web.views.exports import export


class _Echo:
    def write(self, value):
        return value


def _period(request):
    """From and to dates (inclusive) as typed; defaults to the last 30 days."""
    return period_bounds(request.GET)


SOURCE_LABELS = {
    "workbench_documentevent": "Document event",
    "workbench_exceptionevent": "Exception item event",
    "workbench_mappingruleversion": "Mapping rule version",
    "workbench_fieldownership": "Field ownership",
    "schedule": "Schedule",
}


def _readable(rows) -> list:
    """Who and what for the screen: names of the actors of history rows (stored by id), plain source names."""
    rows = list(rows)
    ids = {r.actor_id for r in rows if r.actor_id and not r.actor_name}
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}
    for r in rows:
        r.who = r.actor_name or names.get(r.actor_id, "system" if r.actor_id is None else f"user #{r.actor_id}")
        r.source_label = SOURCE_LABELS.get(r.source, r.source.split(".")[-1])
    return rows


def trail_page(request):
    start, end, lo, hi = _period(request)
    source = request.GET.get("source", "")[:60]
    rows = AuditRecord.objects.filter(at__gte=lo, at__lt=hi).order_by("-id")
    if source:
        rows = rows.filter(source=source)
    page = Paginator(rows, 100).get_page(request.GET.get("page"))
    page.object_list = _readable(page.object_list)
    sources = AuditRecord.objects.order_by().values_list("source", flat=True).distinct()
    return render(
        request,
        "workbench/audit.html",
        {"page": page, "start": start, "end": end, "source": source, "sources": sorted(set(sources))},
    )


def trail_export(request):
    """CSV of a period's records, sealed first, with the chain hash before and at the end of the period:
    anyone holding an earlier export can check that the chain still runs through these rows."""
    audit_seal_all()
    start, end, lo, hi = _period(request)
    rows = AuditRecord.objects.filter(at__gte=lo, at__lt=hi, seq__isnull=False).order_by("seq")
    first = rows.first()
    last = rows.last()

    def lines():
        writer = csv.writer(_Echo())
        yield writer.writerow(["# audit trail", f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}"])
        yield writer.writerow(["# chain before period", first.prev_hash if first else ""])
        yield writer.writerow(
            ["seq", "at", "source", "row", "action", "actor_id", "actor", "data", "row_hash", "chain_hash"]
        )
        for r in rows.iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    r.seq,
                    r.at.isoformat(),
                    r.source,
                    r.row_id,
                    r.action,
                    r.actor_id,
                    r.actor_name,
                    r.data,
                    r.row_hash,
                    r.chain_hash,
                ]  # fmt: skip
            )
        yield writer.writerow(["# chain head", last.seq if last else "", last.chain_hash if last else ""])

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="audit-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
    return response


def overrides_report(request):
    """Who overrode what, for how much, why, who approved, when; CSV with ?format=csv (or export.csv)."""
    start, end, lo, hi = _period(request)
    if request.GET.get("format") in FORMATS:
        return export(request, source="overrides", fmt=request.GET["format"], back="audit:overrides")
    rows = override_list(request.user, lo, hi)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "workbench/overrides.html", {"page": page, "start": start, "end": end})
