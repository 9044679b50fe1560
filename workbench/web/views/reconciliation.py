"""The reconciliation page: the nightly comparisons of the ERP's master data with ours, and their drift.

Drift is shown here and becomes work on its items (sync/reconcile.py says why it is not applied
blindly). Below it, the nightly proof: what we posted against what the ERP holds, per entity, period
and currency, within the viewer's entities. A Reconcile-now button queues a run and polls its
progress like the sync page's Run now; an admin sets how long the detail is kept.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from sync.models import DriftRecord, ProofLine, ReconciliationRun
from sync.reconcile import drift_record_list, reconciliation_run_list, reconciliation_start
from workbench import roles
from workbench.errors import WorkbenchError
from workbench.ledger_proof import Line, totals
from workbench.models import Connection
from workbench.services.reconciliation_items import reconciliation_retention_set, reconciliation_settings_get
from workbench.streams import ORDER as MASTER_DATA_STREAMS

PAGE_SIZE = 100


@vary_on_headers("HX-Request")
def reconciliation_page(request, pk=None):
    runs = list(reconciliation_run_list())
    if pk is not None:
        run = get_object_or_404(ReconciliationRun.objects.select_related("connection"), pk=pk)
    else:  # the latest run that got to the end
        run = next((r for r in runs if r.status == ReconciliationRun.Status.SUCCEEDED), runs[0] if runs else None)
    kind = request.GET.get("kind", "") if request.GET.get("kind") in DriftRecord.Kind.values else ""
    stream = request.GET.get("stream", "") if request.GET.get("stream") in MASTER_DATA_STREAMS else ""
    page = None
    if run is not None:
        page = Paginator(drift_record_list(run=run, kind=kind, stream=stream), PAGE_SIZE).get_page(
            request.GET.get("page")
        )
    context = {
        "runs": runs,
        "run": run,
        "page": page,
        "kind": kind,
        "stream": stream,
        "kinds": DriftRecord.Kind.choices,
        "streams": MASTER_DATA_STREAMS,
        "params": urlencode({k: v for k, v in (("kind", kind), ("stream", stream)) if v}),
        "erp_connections": Connection.objects.filter(role=Connection.Role.ERP, enabled=True),
        **_proof_context(request.user, run),
        "retention": reconciliation_settings_get(),
    }
    # Filters and pages swap only the drift table; the runs table's refresh takes the whole page.
    partial = request.htmx and not request.htmx.boosted and request.htmx.target == "drift"
    return render(
        request, "workbench/reconciliation.html#drift" if partial else "workbench/reconciliation.html", context
    )


def _proof_context(user, run) -> dict:
    if run is None:
        return {"proof": [], "proof_totals": {}}
    lines = list(roles.in_scope(ProofLine.objects.filter(run=run).select_related("entity"), user))
    sums = totals(Line(ln.entity_id, ln.period, ln.currency, ln.ours, ln.erp, ln.documents) for ln in lines)
    return {
        "proof": lines,
        "proof_totals": [
            {"currency": c, "ours": ours, "erp": erp, "difference": ours - erp}
            for c, (ours, erp) in sorted(sums.items())
        ],
    }


@require_POST
def retention_save(request):
    raw = request.POST.get("retention_days", "").strip()
    try:
        days = int(raw) if raw.isdigit() and len(raw) <= 6 else 0
        settings = reconciliation_retention_set(days=days, actor=request.user)
    except WorkbenchError as exc:
        if not request.htmx:
            messages.error(request, str(exc))
            return redirect("sync:reconciliation")
        response = render(
            request, "workbench/reconciliation.html#retention", {"retention": reconciliation_settings_get()}
        )
        return trigger_client_event(response, "toast", {"message": str(exc), "level": "error"})
    if not request.htmx:
        messages.success(request, f"Drift rows and proof lines are kept {settings.retention_days} days.")
        return redirect("sync:reconciliation")
    response = render(request, "workbench/reconciliation.html#retention", {"retention": settings})
    return trigger_client_event(
        response,
        "toast",
        {"message": f"Drift rows and proof lines are kept {settings.retention_days} days.", "level": "success"},
    )


@require_POST
def reconcile_now(request, pk):
    conn = get_object_or_404(Connection, pk=pk, role=Connection.Role.ERP)
    run = reconciliation_start(connection=conn, actor=request.user)
    response = render(request, "workbench/reconciliation.html#progress", {"run": run})
    return trigger_client_event(
        response, "toast", {"message": f"Reconciliation of {conn.name} started", "level": "success"}
    )


def reconciliation_progress(request, pk):
    run = get_object_or_404(ReconciliationRun.objects.select_related("connection"), pk=pk)
    response = render(request, "workbench/reconciliation.html#progress", {"run": run})
    if run.finished:
        # Stop polling, and tell the page to redraw the runs table with this run in it.
        return trigger_client_event(
            HttpResponseStopPolling(response.content), "reconciliationFinished", {"run": run.pk}
        )
    return response
