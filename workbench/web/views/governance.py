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
    code = forms.RegexField(
        regex=r"^[A-Z][A-Z0-9_]{1,29}$",
        error_messages={"invalid": "A reason code is 2-30 capital letters, digits or _, e.g. VENDOR_CREDIT."},
    )

    class Meta:
        model = OverrideReason
        fields = ["code", "label", "active"]


def _errors(form, what: str) -> str:
    """Form errors in people's words: which row, which field by its label."""
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        text = " ".join(str(e) for e in errors)
        if "override_policy_threshold_not_negative" in text:
            text = "must be 0 or more"
        parts.append(f"{label or 'Threshold'}: {text}" if name != "__all__" else f"Threshold {text}")
    return f"{what}: " + "; ".join(parts)


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
        messages.error(request, _errors(form, f"Not saved for {code}"))
    return redirect("governance:policies")


@require_POST
def reason_save(request):
    code = request.POST.get("code", "").strip()[:30]
    form = ReasonForm({**request.POST.dict(), "code": code}, instance=OverrideReason.objects.filter(code=code).first())
    if form.is_valid():
        form.save()
        messages.success(request, f"Reason code {code} saved.")
    else:
        messages.error(request, _errors(form, "Reason code not saved"))
    return redirect("governance:policies")
