from django import forms

from workbench.models import CostCenter, GLAccount, TaxCode


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
