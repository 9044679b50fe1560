"""One exception item: its document, lines, message, trace, and the actions that fix the cause."""

import hashlib
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from sync.workers import worker_health
from workbench import roles
from workbench.errors import WorkbenchError
from workbench.forms import (
    CorrectionForm,
    ReasonForm,
    SnoozeForm,
    cost_center_choices,
    gl_account_choices,
    tax_code_choices,
)
from workbench.models import AccountingPeriod, DocumentLine, Evidence, ExceptionItem, OverrideReason, OverrideRequest
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.selectors import document_trace, exception_item_list, item_events
from workbench.services import item_actions as items_service
from workbench.services import overrides, snooze
from workbench.services.documents import document_line_correct
from workbench.services.evidence import evidence_add, evidence_path
from workbench.services.invoices import accept_limit, can_accept, variance_of
from workbench.services.validation import blocking_findings
from workbench.web.scoping import item_or_404, item_to_work, items_for, may_work
from workbench.web.views.discussion import discussion_context
from workbench.web.views.incidents import held_by_context, incident_context
from workbench.web.views.queue_nav import queue_neighbours

DRIFT_CODES = ("RECONCILIATION_DRIFT", "POSTING_DRIFT")  # fixed from their own card (views/drift.py)
# Which cell of the offending line to highlight, per code.
FLAGGED_FIELD = {
    "MISSING_COST_CENTER": "cost_center",
    "UNKNOWN_COST_CENTER": "cost_center",
    "CLOSED_PERIOD": "date",
    "INVALID_TAX_CODE": "tax_code",
    "BLOCKED_GL_ACCOUNT": "gl_account",
}


def follow(item: ExceptionItem) -> bool:
    """Whether the page should keep polling: a fix is being re-validated, or the document is on its way to the ERP."""
    doc = item.document
    if item.code in DRIFT_CODES:
        return False  # a drift fix waits for the next reconciliation (nightly): nothing to watch live
    if item.status == "waiting" or (doc is not None and doc.financial_status == "posting"):
        return True
    if doc is None or item.status not in ("overridden", "resolved") or doc.financial_status != "not_posted":
        return False
    # Accepted or fixed a moment ago: follow it until it posts, unless something else still holds it.
    recent = item.resolved_at is not None and (timezone.now() - item.resolved_at).total_seconds() < 120
    return recent and not doc.exceptions.filter(status__in=["open", "in_progress"]).exists()


MAPPING_FIELDS = {
    "UNKNOWN_COST_CENTER": "cost_center",
    "INVALID_TAX_CODE": "tax_code",
    "UNKNOWN_ENTITY": "entity",
    "BLOCKED_GL_ACCOUNT": "gl_account",
}


def mapping_link(item: ExceptionItem) -> str:
    """The mapping screen's query string for a rule that fixes every item like this one; "" if no rule can.

    Shared by the item page and the queue's "By root cause" view. A group is one value in one entity,
    whatever system its documents come from: the rule is pre-filled for that value and entity and for
    any source, so it covers the whole group (the mapping screen says which sources that is).
    """
    mapping_field = MAPPING_FIELDS.get(item.code)
    if not mapping_field or not item.is_active or item.document is None:
        return ""
    doc = item.document
    value = item.detail.get("value") or (doc.entity_code if mapping_field == "entity" else "")
    return "?" + urlencode(
        {
            "field": mapping_field,
            "source_value": value,
            **({"entity": doc.entity_id} if doc.entity_id and mapping_field != "entity" else {}),
            **({"group": item.group_id} if item.group_id else {}),
        }
    )


def _override_context(item: ExceptionItem, user) -> dict:
    """What the page offers for overriding: exactly what `overrides.override_request` would allow."""
    policy = overrides.override_policy(item.code)
    pending = item.override_requests.filter(state=OverrideRequest.State.PENDING).select_related("requested_by").first()
    return {
        "override_why_not": overrides.may_request(user, item),
        "override_needs_second": overrides.needs_second_person(item, policy),
        "override_policy": policy,
        "override_reasons": OverrideReason.objects.filter(active=True),
        "pending_override": pending,
        "may_decide_override": pending is not None
        and user.has_perm(roles.APPROVE)
        and pending.requested_by_id != user.pk,
        "may_work": may_work(user, item),
        "may_fix_drift": item.code in DRIFT_CODES and (may_work(user, item) or user.has_perm(roles.CONFIGURE)),
        "evidence": list(item.evidence.select_related("uploaded_by")),
    }


def _snooze_context(item: ExceptionItem) -> dict:
    """What the Snooze form offers (the event the item's code suggests, preselected) and, when snoozed,
    since when it waits."""
    wait = snooze.suggested_wait(item) if item.is_active else None
    since = None
    if item.snoozed:
        since = item.events.filter(action="snoozed").order_by("-at", "-id").values_list("at", flat=True).first()
    return {
        "suggested_wait": wait,
        "wait_choices": ExceptionItem.WaitFor.choices,
        "snoozed_since": since,
        "snooze_min": timezone.localdate() + timedelta(days=1),
    }


def _context(item: ExceptionItem, **extra) -> dict:
    doc = item.document
    ctx = {
        "item": item,
        "doc": doc,
        "events": item_events(item),
        # The offending cell is marked while the item is open; once fixed, the line shows the new value plainly.
        "flag": FLAGGED_FIELD.get(item.code, "") if item.is_active else "",
        "follow": follow(item),
    }
    if doc is not None:
        ctx["lines"] = list(doc.lines.all())
        ctx["trace"] = document_trace(doc)
        ctx["other_items"] = doc.exceptions.exclude(pk=item.pk).order_by("id")
        if doc.entity_id:
            ctx["cost_centers"] = cost_center_choices(doc.entity_id)
            ctx["tax_codes"] = tax_code_choices(doc.entity_id)
            if item.code == "BLOCKED_GL_ACCOUNT":
                ctx["gl_accounts"] = gl_account_choices(doc.entity_id)
            ctx["open_periods"] = AccountingPeriod.objects.filter(entity_id=doc.entity_id, closed=False).order_by(
                "start"
            )
    if doc is not None and doc.kind == "supplier_invoice":
        ctx["match_lines"] = list(doc.lines.select_related("po_line").order_by("line_no"))
        ctx["variance"] = variance_of(item)
        ctx["accept_limit"] = accept_limit(doc)
        ctx["may_accept"] = can_accept(extra["user"], item) if "user" in extra else None
    if item.group_id:
        ctx["group_stats"] = list(
            ExceptionItem.objects.filter(group_id=item.group_id, status__in=ACTIVE_STATUSES)
            .values("currency")
            .annotate(n=Count("id"), total=Sum("amount_at_risk"))
            .order_by("currency")
        )
    ctx["mapping_link"] = mapping_link(item)
    ctx.update(_snooze_context(item))
    ctx["reason_form"] = ReasonForm()
    ctx["users"] = get_user_model().objects.filter(is_active=True).order_by("username")
    if "user" in extra:
        ctx.update(_override_context(item, extra["user"]))
        ctx.update(incident_context(item, extra["user"]))  # an outage: what it holds
        ctx.update(held_by_context(doc, extra["user"]))  # a document waiting for an outage: which
    ctx["stamp"] = _stamp(ctx)
    ctx.update(extra)
    return ctx


def _stamp(ctx: dict) -> str:
    """A short digest of what the page shows about the document, its lines, trace and group: a poll that
    already shows this state gets no out-of-band swaps again."""
    item, doc, trace = ctx["item"], ctx["doc"], ctx.get("trace") or []
    state = (
        item.status,
        item.updated_at,
        doc and (doc.financial_status, doc.revision, doc.updated_at, doc.erp_document_number),
        len(trace),
        trace[-1]["at"] if trace else None,
        [tuple(g.values()) for g in ctx.get("group_stats", [])],
    )
    return hashlib.sha1(repr(state).encode()).hexdigest()[:16]


@vary_on_headers("HX-Request")
def item_detail(request, pk):
    item = item_or_404(
        request, pk, ExceptionItem.objects.select_related("document", "line", "entity", "assignee", "connection")
    )
    ctx = _context(item, user=request.user, queue_nav=queue_neighbours(request, item))
    ctx.update(discussion_context(request.user, item=item))  # comments and watchers (views/discussion.py)
    return render(request, "workbench/item.html", ctx)


def item_progress(request, pk):
    """Polled while a fix is being re-validated and re-posted; stops polling when settled.

    Besides the live panel, what the fix changed (the document's states, its lines, the trace and the
    root-cause group) is swapped in out of band, when it differs from what the poll last showed.
    """
    item = item_or_404(request, pk, exception_item_list())
    ctx = _context(item, user=request.user)
    ctx.update(oob=True, refresh=request.GET.get("seen") != ctx["stamp"])
    response = render(request, "workbench/item.html#work", ctx)
    if not follow(item):
        return HttpResponseStopPolling(response.content)
    return response


def _action_response(request, item, message, level="success"):
    """HTMX: re-render the actions + progress section (and what the action changed) and raise a toast;
    plain POST: redirect."""
    item = item_or_404(request, item.pk, exception_item_list())
    if request.htmx:
        response = render(
            request, "workbench/item.html#work", {**_context(item, user=request.user), "oob": True, "refresh": True}
        )
        return trigger_client_event(response, "toast", {"message": message, "level": level})
    (messages.success if level == "success" else messages.error)(request, message)
    return redirect("items:detail", pk=item.pk)


def _act(request, pk, action, success):
    """Run one analyst action on an item; a refusal becomes an error toast, never a 500.

    `success` is the toast's text, or a function of the action's result that words it."""
    item = item_to_work(request, pk)
    try:
        result = action(item)
    except WorkbenchError as exc:
        return _action_response(request, item, str(exc), "error")
    return _action_response(request, item, success(result) if callable(success) else success)


DOCUMENT_NOUNS = {"expense_report": "report", "requisition": "requisition", "supplier_invoice": "invoice"}


def _correction_toast(line) -> str:
    """Says what the correction will really lead to: posting, or waiting for what else holds the document."""
    doc = line.document
    held = blocking_findings(doc) if doc.business_status != "rejected" else []
    to_approvers = doc.kind == "requisition" and doc.business_status == "pending"  # clean, it is routed, not posted
    if not held:
        return "Corrected; re-validating and " + ("sending it to its approvers…" if to_approvers else "posting…")
    what = held[0] if len(held) == 1 else ", ".join(held[:-1]) + " and " + held[-1]
    noun = DOCUMENT_NOUNS.get(doc.kind, "document")
    hold, pronoun = ("holds", "that is") if len(held) == 1 else ("hold", "they are")
    then = "sent to its approvers" if to_approvers else "posted"
    return f"Corrected. {what} still {hold} the {noun}: it will be {then} once {pronoun} fixed."


def _reason(request, required: bool) -> str:
    form = ReasonForm(request.POST)
    if form.is_valid():
        return form.cleaned_data["reason"]
    if required:
        raise WorkbenchError("This action needs a reason.")
    return ""


@require_POST
def item_correct(request, pk):
    def correct(item):
        form = CorrectionForm(request.POST)
        if not form.is_valid():
            raise WorkbenchError("Choose a value to apply.")
        line = DocumentLine.objects.filter(pk=form.cleaned_data["line"], document_id=item.document_id).first()
        if line is None:
            raise WorkbenchError("That line is not on this item's document.")
        return document_line_correct(
            line=line,
            field_name=form.cleaned_data["field"],
            value=form.cleaned_data["value"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
        )

    return _act(request, pk, correct, _correction_toast)


@transaction.atomic  # the override and its evidence together, or neither (a refused file files nothing)
def _override(request, item):
    req = overrides.override_request(
        item=item,
        actor=request.user,
        reason_code=request.POST.get("reason_code", "")[:30],
        text=request.POST.get("reason", ""),  # the service refuses an over-long note (never cut)
    )
    for upload in request.FILES.getlist("evidence")[:5]:
        evidence_add(item=item, upload=upload, actor=request.user, override=req)
    return req


def _override_toast(req) -> str:
    if req.state == OverrideRequest.State.PENDING:
        return "Override requested: above your authority, it waits for a finance manager's approval."
    return "Overridden. The document goes on if nothing else blocks it."


@require_POST
def item_override(request, pk):
    """Ask to override within the code's policy (the item page offers only what this allows)."""
    item = item_to_work(request, pk)
    try:
        req = _override(request, item)
    except WorkbenchError as exc:
        return _action_response(request, item, str(exc), "error")
    return _action_response(request, item, _override_toast(req))


@require_POST
def item_override_decide(request, pk):
    """A finance manager (not the one who asked) approves or refuses a waiting override."""
    item = item_or_404(request, pk)
    pending = item.override_requests.filter(state=OverrideRequest.State.PENDING).first()
    if pending is None:
        return _action_response(request, item, "No override of this item is waiting.", "error")
    approve = request.POST.get("decision") == "approve"
    try:
        overrides.override_decide(
            request_id=pending.pk, approver=request.user, approve=approve, text=request.POST.get("reason", "")
        )
    except WorkbenchError as exc:
        return _action_response(request, item, str(exc), "error")
    return _action_response(request, item, "Override approved and applied." if approve else "Override refused.")


@require_POST
def item_evidence(request, pk):
    item = item_to_work(request, pk)
    uploads = request.FILES.getlist("evidence")[:5]
    try:
        if not uploads:
            raise WorkbenchError("Choose a file to attach.")
        for upload in uploads:
            evidence_add(item=item, upload=upload, actor=request.user)
    except WorkbenchError as exc:
        return _action_response(request, item, str(exc), "error")
    return _action_response(request, item, f"{len(uploads)} file{'s' if len(uploads) != 1 else ''} attached.")


def evidence_download(request, pk):
    """Only within the account's entity scope; served as an attachment of the type its content is."""
    evidence = get_object_or_404(Evidence.objects.filter(item__in=items_for(request.user)), pk=pk)
    path = evidence_path(evidence)
    if not path.is_file():
        raise Http404("The file is no longer stored.")
    response = FileResponse(
        path.open("rb"), as_attachment=True, filename=evidence.name, content_type=evidence.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
def item_send_back(request, pk):
    return _act(
        request,
        pk,
        lambda item: items_service.exception_item_send_back(
            item=item, reason=_reason(request, required=False), actor=request.user
        ),
        "Sent back to the source system. The item waits for a corrected version.",
    )


@require_POST
def item_retry(request, pk):
    return _act(
        request, pk, lambda item: items_service.exception_item_retry(item=item, actor=request.user), "Retry queued."
    )


@require_POST
def item_assign(request, pk):
    username = request.POST.get("assignee", "")[:150]
    user = request.user if username == "me" else get_user_model().objects.filter(username=username).first()
    return _act(
        request,
        pk,
        lambda item: items_service.exception_item_assign(item=item, assignee=user, actor=request.user),
        f"Assigned to {user.get_username() if user else 'nobody'}.",
    )


@require_POST
def item_snooze(request, pk):
    """Set the item aside until a date or an event; the sync that sees the event wakes it."""

    def snooze_it(item):
        form = SnoozeForm(request.POST)
        if not form.is_valid():
            raise WorkbenchError(
                " ".join(e if f == "__all__" else f"{f}: {e}" for f, errors in form.errors.items() for e in errors)
            )
        return snooze.exception_item_snooze(item=item, actor=request.user, **form.terms())

    return _act(request, pk, snooze_it, lambda item: snooze.describe(item) + ". It leaves the queue until then.")


@require_POST
def item_wake(request, pk):
    return _act(
        request,
        pk,
        lambda item: snooze.exception_item_wake(item=item, actor=request.user),
        "Woken: back in the queue, and its document is checked again.",
    )


def healthz(request):
    """Liveness for a load balancer or an orchestrator: the database answers, and the workers take work.

    503 when the database is unreachable, or when work waits and no worker has taken a task for
    WORKER_STALL_SECONDS (a worker that is up but hung is as bad as none).
    """
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure is "unhealthy"
        return JsonResponse({"status": "down", "database": "unreachable"}, status=503)
    workers = worker_health()
    body = {"status": "ok" if workers["status"] == "ok" else "degraded", "database": "ok", "workers": workers}
    return JsonResponse(body, status=200 if workers["status"] == "ok" else 503)
