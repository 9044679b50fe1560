"""Override policy per exception code, and the reason codes an override must name (admins edit)."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from workbench.models import OverridePolicy, OverrideReason
from workbench.rules import CODES
from workbench.services.overrides import override_policy


class PolicyForm(forms.ModelForm):
    class Meta:
        model = OverridePolicy
        fields = ["code", "overridable", "role", "approval_above"]


class ReasonForm(forms.ModelForm):
    class Meta:
        model = OverrideReason
        fields = ["code", "label", "active"]


def policies_page(request):
    rows = [{"spec": spec, "policy": override_policy(code)} for code, spec in sorted(CODES.items())]
    return render(
        request,
        "workbench/governance.html",
        {"rows": rows, "reasons": OverrideReason.objects.all(), "roles": OverridePolicy.Role.choices},
    )


@require_POST
def policy_save(request):
    code = request.POST.get("code", "")[:40]
    if code not in CODES:
        messages.error(request, "Unknown exception code.")
        return redirect("governance:policies")
    form = PolicyForm(request.POST, instance=OverridePolicy.objects.filter(code=code).first())
    if form.is_valid():
        policy = form.save(commit=False)
        policy.updated_by = request.user
        policy.save()
        messages.success(request, f"Override policy for {code} saved.")
    else:
        messages.error(request, "; ".join(f"{k}: {', '.join(v)}" for k, v in form.errors.items()))
    return redirect("governance:policies")


@require_POST
def reason_save(request):
    code = request.POST.get("code", "").strip().upper()[:30]
    form = ReasonForm({**request.POST.dict(), "code": code}, instance=OverrideReason.objects.filter(code=code).first())
    if form.is_valid():
        form.save()
        messages.success(request, f"Reason code {code} saved.")
    else:
        messages.error(request, "; ".join(f"{k}: {', '.join(v)}" for k, v in form.errors.items()))
    return redirect("governance:policies")
