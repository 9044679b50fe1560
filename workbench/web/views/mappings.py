"""Mapping rules screens (admins): list, test a rule's impact, save it and watch it fix the queue."""

from __future__ import annotations

from django import forms
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from workbench.errors import WorkbenchError
from workbench.models import LegalEntity, MappingRule, MappingRun
from workbench.services.mappings import (
    mapping_group_summary,
    mapping_impact,
    mapping_rule_save,
    mapping_rules_refused_targets,
)


class MappingRuleForm(forms.ModelForm):
    reason = forms.CharField(max_length=300, required=False, label="Why (kept in the history)")

    class Meta:
        model = MappingRule
        fields = [
            "field",
            "source_system",
            "entity",
            "source_value",
            "pattern",
            "target_value",
            "effective_from",
            "effective_to",
            "active",
            "note",
        ]
        labels = {
            "source_value": "Source value",
            "pattern": "…or pattern (regular expression)",
            "target_value": "ERP value",
            "source_system": "Source system (blank = any)",
        }
        widgets = {
            "effective_from": forms.DateInput(attrs={"type": "date"}),
            "effective_to": forms.DateInput(attrs={"type": "date"}),
        }


def _initial(request) -> dict:
    """Pre-filled from an exception item's "fix all with a rule" link."""
    get = request.GET
    initial = {k: get[k][:100] for k in ("field", "source_system", "source_value", "target_value") if get.get(k)}
    if get.get("entity", "").isdigit():
        initial["entity"] = LegalEntity.objects.filter(pk=int(get["entity"][:12])).first()
    return initial


@vary_on_headers("HX-Request")
def mappings_page(request, pk=None):
    rule = get_object_or_404(MappingRule, pk=pk) if pk else None
    form = MappingRuleForm(instance=rule, initial=None if rule else _initial(request))
    # Started from a root cause ("fix all with a mapping rule"): what the group holds, and its id for the preview.
    group = None if rule else mapping_group_summary(request.GET.get("group", "")[:12])
    rules = list(
        MappingRule.objects.select_related("entity", "updated_by").order_by("field", "source_value", "pattern")
    )
    refused = mapping_rules_refused_targets(rules)
    for r in rules:
        r.refused_target = refused.get(r.pk, "")
    return render(
        request,
        "workbench/mappings.html",
        {
            "rules": rules,
            "form": form,
            "rule": rule,
            "versions": rule.versions.select_related("changed_by") if rule else [],
            "runs": rule.runs.all()[:5] if rule else [],
            "fields": MappingRule.Field.choices,
            "group": group,
        },
    )


def _bound(request, pk):
    rule = get_object_or_404(MappingRule, pk=pk) if pk else None
    return MappingRuleForm(request.POST, instance=rule), rule


def _started_from(request) -> list[int]:
    """The root cause the rule was started from (a hidden field), so the preview says what it leaves out of it."""
    group = request.POST.get("group", "")[:12]
    return [int(group)] if group.isdigit() else []


@require_POST
def mapping_test(request, pk=None):
    """Test the rule as typed (not saved): what it would resolve now."""
    form, _ = _bound(request, pk)
    if not form.is_valid():
        return render(request, "workbench/mappings.html#impact", {"form": form, "impact": None})
    impact = mapping_impact(form.save(commit=False), groups=_started_from(request))
    return render(request, "workbench/mappings.html#impact", {"form": form, "impact": impact})


@require_POST
def mapping_save(request, pk=None):
    form, rule = _bound(request, pk)
    if not form.is_valid():
        return render(request, "workbench/mappings.html#impact", {"form": form, "impact": None})
    try:
        run = mapping_rule_save(rule=form.save(commit=False), actor=request.user, reason=form.cleaned_data["reason"])
    except (WorkbenchError, forms.ValidationError) as exc:
        msg = "; ".join(exc.messages) if hasattr(exc, "messages") else str(exc)
        response = render(request, "workbench/mappings.html#impact", {"form": form, "impact": None, "error": msg})
        return trigger_client_event(response, "toast", {"message": msg, "level": "error"})
    response = render(request, "workbench/mappings.html#progress", {"run": run, "rule": form.instance, "saved": True})
    return trigger_client_event(
        response, "toast", {"message": f"Saved as version {form.instance.version}.", "level": "success"}
    )


def mapping_run_progress(request, pk):
    run = get_object_or_404(MappingRun.objects.select_related("rule"), pk=pk)
    response = render(request, "workbench/mappings.html#progress", {"run": run, "rule": run.rule})
    return HttpResponseStopPolling(response.content) if run.status in ("done", "failed") else response
