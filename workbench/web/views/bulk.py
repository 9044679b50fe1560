"""Bulk actions from the queue: preview what an action would do to the ticked items (or to every item
matching the queue's filters), then confirm. Small sets run in the request; larger ones become a
background job with its progress page (`/jobs/<id>/`). The rules are in `services/bulk.py`.
"""

from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from workbench.errors import WorkbenchError
from workbench.models import OverrideReason
from workbench.services import bulk
from workbench.services.work_jobs import work_job_run
from workbench.web.views.queue_nav import queue_data, queue_filtered


def _queue_data(request) -> QueryDict:
    return queue_data(request.user, request.POST.get("query", ""))


def _selection(request) -> tuple[list[int], str]:
    """(item ids, words for them): the ticked items, or every item the queue's filters match."""
    if request.POST.get("scope") == "all":
        data = _queue_data(request)
        qs = queue_filtered(request, data)
        if qs is None:
            raise WorkbenchError("These filters are not valid any more: reload the queue and try again.")
        ids = list(qs.values_list("pk", flat=True)[: bulk.MAX_ITEMS + 1])
        return ids, "all items matching these filters"
    ids = bulk.clean_ids(request.POST.getlist("item"))
    if not ids:
        raise WorkbenchError("Tick the items first, or choose all items matching the filters.")
    return ids[: bulk.MAX_ITEMS + 1], "the ticked items"


def _back_url(request) -> str:
    return reverse("queue:list") + "?" + _queue_data(request).urlencode()


def _error(request, message: str):
    if request.htmx:
        response = render(request, "workbench/bulk.html#error", {"message": message})
        return trigger_client_event(response, "toast", {"message": message, "level": "error"})
    return render(request, "workbench/bulk.html", {"message": message, "back_url": _back_url(request)})


@require_POST
def bulk_preview(request):
    """How many items the action changes, how many it skips and why, and the money at risk per currency."""
    action = request.POST.get("action", "")
    try:
        args = bulk.bulk_args_clean(action=action, raw=request.POST, user=request.user)
        ids, words = _selection(request)
        preview = bulk.bulk_preview(user=request.user, action=action, ids=ids, args=args)
    except WorkbenchError as exc:
        return _error(request, str(exc))
    context = {
        "preview": preview,
        "words": words,
        "ids": ids if request.POST.get("scope") != "all" else [],
        "post": request.POST,
        "token": bulk.new_token(),
        "background": preview.count > bulk.inline_limit(),
        "limit": bulk.inline_limit(),
        "back_url": _back_url(request),
        "reason_label": OverrideReason.objects.filter(code=args.get("reason_code", "")).first(),
    }
    template = "workbench/bulk.html#preview" if request.htmx else "workbench/bulk.html"
    return render(request, template, context)


@require_POST
def bulk_run(request):
    """Confirmed: run it now (a small set) or on the worker (a large one, with its progress page)."""
    action = request.POST.get("action", "")
    try:
        args = bulk.bulk_args_clean(action=action, raw=request.POST, user=request.user)
        ids, _ = _selection(request)
        if len(ids) > bulk.MAX_ITEMS:
            raise WorkbenchError(f"More than {bulk.MAX_ITEMS:,} items: narrow the filters first.")
        job, created = bulk.bulk_start(
            user=request.user,
            action=action,
            ids=ids,
            args=args,
            token=request.POST.get("token", "")[:64],
            back_url=_back_url(request),
            background=len(ids) > bulk.inline_limit(),
        )
    except WorkbenchError as exc:
        return _error(request, str(exc))
    if created and not job.params.get("background"):
        work_job_run(job.pk)  # small: done before the answer
        job.refresh_from_db()
    if not job.finished:
        url = reverse("jobs:detail", args=[job.pk])
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {"job": job, "result": job.result, "back_url": job.params.get("back_url", "")}
    if not request.htmx:
        return render(request, "workbench/bulk.html", context)
    response = render(request, "workbench/bulk.html#summary", context)
    message = job.result.get("message") or job.message
    level = "error" if job.status == job.Status.FAILED else "success"
    response = trigger_client_event(response, "toast", {"message": message, "level": level})
    return trigger_client_event(response, "queueChanged", {})
