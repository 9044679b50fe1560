"""The reconciliation page: the nightly comparisons of the ERP's master data with ours, and their drift.

Drift is shown, not applied (sync/reconcile.py says why). A Reconcile-now button queues a run and
polls its progress like the sync page's Run now.
"""

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from sync.models import DriftRecord, ReconciliationRun
from sync.reconcile import drift_record_list, reconciliation_run_list, reconciliation_start
from workbench.models import Connection
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
    }
    # Filters and pages swap only the drift table; the runs table's refresh takes the whole page.
    partial = request.htmx and not request.htmx.boosted and request.htmx.target == "drift"
    return render(
        request, "workbench/reconciliation.html#drift" if partial else "workbench/reconciliation.html", context
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
