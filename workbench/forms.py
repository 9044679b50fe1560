from datetime import datetime, time

from django import forms
from django.utils import timezone

from workbench.models import CostCenter, GLAccount, TaxCode
from workbench.models.exceptions import WaitFor


class CorrectionForm(forms.Form):
    line = forms.IntegerField(widget=forms.HiddenInput)
    field = forms.ChoiceField(
        choices=[
            ("cost_center", "Cost center"),
            ("date", "Date"),
            ("tax_code", "Tax code"),
            ("project", "Project"),
            ("gl_account", "GL account"),
        ]
    )
    value = forms.CharField(max_length=40)
    reason = forms.CharField(
        max_length=500, required=False, widget=forms.TextInput(attrs={"placeholder": "Why (kept in the history)"})
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Why is this acceptable? (kept in the history)"}),
    )


class SnoozeForm(forms.Form):
    """The item page's Snooze: until a date (the start of that day, local time), or until an event."""

    mode = forms.ChoiceField(choices=[("event", "Until the event"), ("date", "Until a date")])
    until = forms.DateField(required=False)
    wait_for = forms.ChoiceField(choices=[("", "—"), *WaitFor.choices], required=False)
    wait_key = forms.CharField(max_length=200, required=False)
    reason = forms.CharField(max_length=2000, required=False)

    def clean(self):
        data = super().clean()
        if data.get("mode") == "date" and not data.get("until"):
            raise forms.ValidationError("Choose the date to wake it on.")
        if data.get("mode") == "event" and not data.get("wait_for"):
            raise forms.ValidationError("Choose the event to wait for.")
        return data

    def terms(self) -> dict:
        """The service's keyword arguments."""
        data = self.cleaned_data
        if data["mode"] == "date":
            start = datetime.combine(data["until"], time.min)
            return {"until": timezone.make_aware(start), "reason": data["reason"]}
        return {"wait_for": data["wait_for"], "wait_key": data["wait_key"], "reason": data["reason"]}


def cost_center_choices(entity_id):
    return list(
        CostCenter.objects.filter(entity_id=entity_id, active=True).order_by("code").values_list("code", "name")
    )


def gl_account_choices(entity_id):
    """Accounts the ERP takes a line on: posting accounts, not blocked, open for direct posting."""
    return list(
        GLAccount.objects.filter(
            entity_id=entity_id, blocked=False, account_type=GLAccount.POSTING, direct_posting=True
        )
        .order_by("code")
        .values_list("code", "name")
    )


def tax_code_choices(entity_id):
    return list(TaxCode.objects.filter(entity_id=entity_id).order_by("code").values_list("code", "name"))
