"""Procure-to-pay screens: invoice match actions, the accrual picture, budgets, approval and match settings,
and the e-invoice upload."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.db import IntegrityError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from sync.jobs.einvoice_inbox import einvoice_receive
from workbench import roles
from workbench.errors import WorkbenchError
from workbench.models import AccrualJournal, ApprovalDelegation, ApprovalRule, LegalEntity, MatchTolerance
from workbench.selectors import accruals, budget_positions
from workbench.services import invoices
from workbench.services.accruals import accrual_post
from workbench.services.p2p_settings import approval_rule_save, delegation_add, tolerance_save

from .items import _act, _reason

# --- invoice match actions (on the item page) ------------------------------------------------------


@require_POST
def accept_variance(request, pk):
    return _act(
        request,
        pk,
        lambda item: invoices.invoice_accept_variance(
            item=item, reason=_reason(request, required=True), actor=request.user
        ),
        "Variance accepted. The invoice goes on to posting if nothing else blocks it.",
    )


@require_POST
def request_credit_note(request, pk):
    return _act(
        request,
        pk,
        lambda item: invoices.invoice_request_credit_note(
            item=item, reason=_reason(request, required=False), actor=request.user
        ),
        "Credit note requested from the supplier. The item waits for it.",
    )


@require_POST
def route_to_approver(request, pk):
    approver = request.POST.get("approver", "").strip()[:40]
    return _act(
        request,
        pk,
        lambda item: invoices.invoice_route_to_approver(item=item, actor=request.user, approver=approver),
        "Sent to the approver. Their decision comes back from the approval engine.",
    )


@require_POST
def reject_invoice(request, pk):
    return _act(
        request,
        pk,
        lambda item: invoices.invoice_reject(item=item, reason=_reason(request, required=True), actor=request.user),
        "Invoice rejected back to the supplier.",
    )


# --- accruals and budgets ------------------------------------------------------------------------------


def _journals_context(request, entity: str) -> dict:
    """The accrual journals the reader may see (their entities), newest period first."""
    journals = roles.in_scope(AccrualJournal.objects.select_related("entity", "requested_by"), request.user)
    if entity:
        journals = journals.filter(entity__code=entity)
    return {
        "journals": journals[:48],
        "can_post_accrual": request.user.has_perm(roles.APPROVE),
        "accrual_period": request.POST.get("period", "")[:7] or f"{timezone.now():%Y-%m}",
    }


@vary_on_headers("HX-Request")
def accruals_page(request):
    entity = request.GET.get("entity", "")[:20]
    data = accruals(entity_code=entity, entity_ids=roles.entity_ids(request.user))
    entities = roles.in_scope(LegalEntity.objects.all(), request.user, field="pk")
    return render(
        request,
        "workbench/accruals.html",
        {**data, **_journals_context(request, entity), "entity": entity, "entities": entities},
    )


@require_POST
def accrual_post_view(request):
    """A finance manager posts an entity's period accrual to the ERP (its reversal follows once it is booked)."""
    code = request.POST.get("entity", "")[:20]
    entity = get_object_or_404(roles.in_scope(LegalEntity.objects.all(), request.user, field="pk"), code=code)
    period = request.POST.get("period", "")[:7]
    level = "success"
    try:
        journals, changed = accrual_post(entity=entity, period=period, actor=request.user)
    except WorkbenchError as exc:
        message, level = str(exc), "error"
    except IntegrityError:  # a second request for the same entity and period won the race
        message, level = f"The accrual of {entity.code} for {period} was just requested by someone else.", "info"
    else:
        accrual = journals[0]
        if changed:
            message = (
                f"Accrual {accrual.document_number} of {accrual.amount:,.2f} {accrual.currency} queued for the ERP."
            )
            if accrual.status == AccrualJournal.Status.POSTED:
                message = f"Reversal of {accrual.document_number} queued for the ERP."
        else:
            message = f"The accrual of {entity.code} for {period} is already {accrual.get_status_display().lower()}."
            level = "info"
        if accrual.message and accrual.status == AccrualJournal.Status.QUEUED:
            message += " " + accrual.message
    if request.htmx:
        entities = roles.in_scope(LegalEntity.objects.all(), request.user, field="pk")
        shown = request.POST.get("shown", "")[:20]  # the page's entity filter: the section stays as it was
        ctx = {**_journals_context(request, shown), "entity": shown or code, "entities": entities}
        response = render(request, "workbench/accruals.html#journals", ctx)
        return trigger_client_event(response, "toast", {"message": message, "level": level})
    (messages.success if level != "error" else messages.error)(request, message)
    return redirect(f"{reverse('p2p:accruals')}?entity={entity.code}")


@vary_on_headers("HX-Request")
def budgets_page(request):
    entity = request.GET.get("entity", "")[:20]
    period = request.GET.get("period", "")[:7]
    rows = budget_positions(
        entity_code=entity,
        period=period,
        only_used=request.GET.get("all") != "1",
        entity_ids=roles.entity_ids(request.user),
    )
    entities = roles.in_scope(LegalEntity.objects.all(), request.user, field="pk")
    return render(
        request,
        "workbench/budgets.html",
        {"rows": rows, "entity": entity, "period": period, "entities": entities},
    )


# --- settings: approval thresholds, delegations, match tolerances ------------------------------------------


class ApprovalRuleForm(forms.ModelForm):
    class Meta:
        model = ApprovalRule
        fields = ["entity", "category", "min_amount", "levels", "extra_approver", "sla_hours", "active"]
        labels = {
            "min_amount": "From amount",
            "extra_approver": "Also approves (employee code)",
            "sla_hours": "SLA (hours)",
        }


class DelegationForm(forms.ModelForm):
    class Meta:
        model = ApprovalDelegation
        fields = ["approver", "delegate", "start", "end", "reason"]
        widgets = {"start": forms.DateInput(attrs={"type": "date"}), "end": forms.DateInput(attrs={"type": "date"})}


class ToleranceForm(forms.ModelForm):
    class Meta:
        model = MatchTolerance
        fields = ["entity", "price_pct", "qty_abs", "amount_abs", "accept_limit", "due_soon_days"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["due_soon_days"].required = False  # a form without it keeps the current value

    def clean_due_soon_days(self):
        value = self.cleaned_data.get("due_soon_days")
        return self.instance.due_soon_days if value is None else value


def _settings_context(**extra):
    ctx = {
        "rules": ApprovalRule.objects.select_related("entity", "updated_by"),
        "delegations": ApprovalDelegation.objects.select_related("updated_by")[:50],
        "tolerances": MatchTolerance.objects.select_related("entity", "updated_by"),
        "rule_form": ApprovalRuleForm(),
        "delegation_form": DelegationForm(),
        "tolerance_form": ToleranceForm(),
    }
    ctx.update(extra)
    return ctx


@vary_on_headers("HX-Request")
def settings_page(request):
    return render(request, "workbench/p2p_settings.html", _settings_context())


def _saved(request, partial: str, message: str, **ctx):
    if request.htmx:
        response = render(request, f"workbench/p2p_settings.html#{partial}", _settings_context(**ctx))
        return trigger_client_event(response, "toast", {"message": message, "level": "success" if not ctx else "error"})
    messages.success(request, message)
    return redirect("p2p:settings")


@require_POST
def rule_save(request, pk=None):
    instance = get_object_or_404(ApprovalRule, pk=pk) if pk else None
    form = ApprovalRuleForm(request.POST, instance=instance)
    if not form.is_valid():
        return _saved(request, "rules", "Check the rule's fields.", rule_form=form)
    try:
        rule = approval_rule_save(rule=form.save(commit=False), actor=request.user)
    except WorkbenchError as exc:
        form.add_error("extra_approver", str(exc))
        return _saved(request, "rules", str(exc), rule_form=form)
    who = f"{rule.entity.code if rule.entity else 'any entity'}, {rule.category or 'any category'}"
    return _saved(request, "rules", f"Saved: {who} from {rule.min_amount:,.2f} needs {rule.levels} approver(s).")


@require_POST
def delegation_save(request):
    form = DelegationForm(request.POST)
    if not form.is_valid():
        return _saved(request, "delegations", "Check the delegation's fields.", delegation_form=form)
    try:
        d = delegation_add(delegation=form.save(commit=False), actor=request.user)
    except WorkbenchError as exc:
        form.add_error(None, str(exc))
        return _saved(request, "delegations", str(exc), delegation_form=form)
    return _saved(request, "delegations", f"Delegation saved: {d}.")


@require_POST
def tolerance_save_view(request, pk=None):
    instance = get_object_or_404(MatchTolerance, pk=pk) if pk else None
    form = ToleranceForm(request.POST, instance=instance)
    if not form.is_valid():
        return _saved(request, "tolerances", "Check the tolerance fields.", tolerance_form=form)
    tol = tolerance_save(tolerance=form.save(commit=False), actor=request.user)
    return _saved(request, "tolerances", f"{tol} saved. Open match exceptions are re-checked.")


# --- e-invoice upload ---------------------------------------------------------------------------------------


def einvoice_upload_page(request):
    results = []
    if request.method == "POST":
        files = request.FILES.getlist("files")[:50]
        if not files:
            messages.error(request, "Choose one or more UBL 2.1 XML files.")
        for f in files:
            got = einvoice_receive(
                content=f.read(25 * 1024 * 1024 + 1), filename=f.name, channel="upload", actor=request.user
            )
            codes = (
                sorted(
                    set(
                        got.document.exceptions.filter(status__in=["open", "in_progress", "waiting"]).values_list(
                            "code", flat=True
                        )
                    )
                )
                if got.document
                else []
            )
            results.append(
                {
                    "name": f.name,
                    "ok": got.ok,
                    "duplicate": got.duplicate_file,
                    "document": got.document,
                    "item": got.item,
                    "codes": codes,
                }
            )
    return render(request, "workbench/einvoice_upload.html", {"results": results, "total": Decimal(0)})
