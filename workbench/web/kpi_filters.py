"""The KPI filters (entity, source system, code) as one form, read alike by the dashboard and `/api/kpis/`."""

from django import forms

from workbench.models import Document, LegalEntity
from workbench.roles import in_scope
from workbench.rules import CODES
from workbench.selectors.kpis import KpiFilters

NOT_A_CHOICE = "That is not one of the choices."


class KpiFilterForm(forms.Form):
    entity = forms.ModelChoiceField(
        queryset=LegalEntity.objects.none(), to_field_name="code", required=False, empty_label="All entities"
    )
    # The refused value is not echoed back: it may be anything, of any size.
    source = forms.ChoiceField(required=False, label="Source system", error_messages={"invalid_choice": NOT_A_CHOICE})
    code = forms.ChoiceField(
        choices=[("", "All codes")] + [(c, c) for c in CODES],
        required=False,
        error_messages={"invalid_choice": NOT_A_CHOICE},
    )

    def __init__(self, data, *, user):
        super().__init__(data)
        # Only the account's own entities are offered or accepted; others are "not a valid choice".
        self.fields["entity"].queryset = in_scope(LegalEntity.objects.all(), user, field="pk")
        # order_by(): the model's default order would make every row distinct.
        systems = (
            in_scope(Document.objects.all(), user).order_by("source_system").values_list("source_system", flat=True)
        )
        self.fields["source"].choices = [("", "All source systems")] + [(s, s) for s in systems.distinct()]
        for name in ("entity", "source", "code"):
            self.fields[name].widget.attrs["aria-label"] = self.fields[name].label or name.title()

    def filters(self) -> KpiFilters:
        data = self.cleaned_data
        return KpiFilters(
            entity=data.get("entity"), source_system=data.get("source") or "", code=data.get("code") or ""
        )

    def error_text(self) -> str:
        return "; ".join(f"{name}: {' '.join(errs)}" for name, errs in self.errors.items())
