"""The Alerts screen: rules (admins edit; managers and engineers read) and the firing history.

The history shows what the viewer's entities allow (`roles.in_scope`): an item's firing carries its
entity. Webhook URLs are the chat's secret, so readers see only the host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from workbench import jobs
from workbench.models import AlertFiring, AlertRule, ExceptionItem, LegalEntity
from workbench.roles import CONFIGURE, in_scope
from workbench.rules import CODES
from workbench.services.alerts import (
    TEAMS,
    AlertRuleInvalid,
    alert_firings_told,
    alert_rule_save,
    role_groups,
    target_label,
)

HISTORY = 100


class AlertRuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    condition = forms.ChoiceField(choices=AlertRule.Condition.choices)
    enabled = forms.BooleanField(required=False, initial=True)
    minutes = forms.IntegerField(required=False, min_value=1, max_value=10**6, label="Down longer than (minutes)")
    hours = forms.IntegerField(required=False, min_value=1, max_value=10**6, label="Hours")
    amount = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=4)
    currency = forms.CharField(required=False, max_length=3)
    growth = forms.IntegerField(required=False, min_value=1, max_value=10**7, label="Grows by more than (items)")
    entity = forms.ModelChoiceField(LegalEntity.objects.order_by("code"), required=False, to_field_name="code")
    kind = forms.ChoiceField(choices=[("", "Business and technical"), *ExceptionItem.Kind.choices], required=False)
    code = forms.ChoiceField(choices=[("", "Any code"), *((c, f"{c} — {s.title}") for c, s in sorted(CODES.items()))], required=False)  # fmt: skip
    target = forms.ChoiceField(choices=AlertRule.Target.choices)
    target_role = forms.ModelChoiceField(role_groups(), required=False, label="Role")
    target_team = forms.ChoiceField(choices=[("", "—"), *((k, v[0]) for k, v in TEAMS.items())], required=False, label="Team")  # fmt: skip
    target_person = forms.ModelChoiceField(
        get_user_model().objects.filter(is_active=True).order_by("username"), required=False, label="Person",
        to_field_name="username",
    )  # fmt: skip
    email = forms.BooleanField(required=False, label="Also by e-mail")
    chat_format = forms.ChoiceField(choices=AlertRule.ChatFormat.choices, required=False, label="Chat")
    chat_url = forms.CharField(required=False, max_length=500, label="Incoming webhook URL")

    def clean_currency(self):
        return (self.cleaned_data.get("currency") or "").strip().upper()

    def clean_name(self):
        return self.cleaned_data["name"].strip()


def _initial(rule: AlertRule) -> dict:
    return {
        **{f: getattr(rule, f) for f in ("name", "condition", "enabled", "minutes", "hours", "amount", "currency",
                                           "growth", "kind", "code", "target", "target_team", "email", "chat_format",
                                           "chat_url")},
        "entity": rule.entity.code if rule.entity_id else None,
        "target_role": rule.target_role_id,
        "target_person": rule.target_person.username if rule.target_person_id else None,
    }  # fmt: skip


def _values(form: AlertRuleForm) -> dict:
    d = dict(form.cleaned_data)
    for name in ("target_team", "kind", "code", "chat_format", "chat_url", "currency"):
        d[name] = d.get(name) or ""
    return d


def _webhook_host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def alerts_page(request):
    rules = list(AlertRule.objects.select_related("entity", "target_role", "target_person", "updated_by"))
    for rule in rules:
        rule.target_text = target_label(rule)
        rule.webhook_host = _webhook_host(rule.chat_url)
    firings = in_scope(AlertFiring.objects.all(), request.user)
    rule_id = request.GET.get("rule", "")
    if rule_id.isdigit() and len(rule_id) < 10:
        firings = firings.filter(rule_id=int(rule_id))
    firings = list(firings.select_related("rule").prefetch_related("chats")[:HISTORY])
    told = alert_firings_told(firings)
    for f in firings:
        f.told = told.get(f.pk, [])
        f.subject = f.title.removeprefix(f"{f.rule.name}: ")  # the rule has its own column
        f.chat_list = sorted(f.chats.all(), key=lambda c: c.phase != "fired")
    return render(
        request,
        "workbench/alerts.html",
        {
            "rules": rules,
            "firings": firings,
            "rule_id": rule_id,
            "can_edit": request.user.has_perm(CONFIGURE),
        },
    )


def _edit(request, rule: AlertRule | None):
    if request.method == "POST":
        form = AlertRuleForm(request.POST)
        if form.is_valid():
            try:
                saved = alert_rule_save(rule=rule, values=_values(form), actor=request.user)
            except AlertRuleInvalid as exc:
                for field, message in exc.errors.items():
                    form.add_error(field if field in form.fields else None, message)
            else:
                messages.success(request, f"Alert rule “{saved.name}” saved; it is evaluated every minute.")
                return redirect("alerts:page")
    else:
        form = AlertRuleForm(initial=_initial(rule) if rule else {"enabled": True, "target": "role"})
    return render(request, "workbench/alert_rule.html", {"form": form, "rule": rule})


def rule_new(request):
    return _edit(request, None)


def rule_edit(request, pk):
    return _edit(request, get_object_or_404(AlertRule, pk=pk))


@require_POST
def evaluate_now(request):
    jobs.enqueue_on_commit(jobs.EVALUATE_ALERTS)
    messages.success(request, "Alert rules are being evaluated; the history below shows what fired.")
    return redirect("alerts:page")
