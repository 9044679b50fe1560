"""Admin: connections and exception codes are editable by admins; ERP master data is read-only."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from workbench.models import (
    AccountingPeriod,
    ApiToken,
    Connection,
    CostCenter,
    Currency,
    Document,
    Employee,
    ExceptionItem,
    GLAccount,
    LegalEntity,
    PaymentTerm,
    Project,
    TaxCode,
    UserScope,
)
from workbench.secrets import masked, merged


class ReadOnlyAdmin(admin.ModelAdmin):
    """The ERP owns this data: it is synced, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LegalEntity)
class LegalEntityAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "currency", "erp_id", "synced_at"]


@admin.register(CostCenter, GLAccount, TaxCode, Project)
class EntityScopedAdmin(ReadOnlyAdmin):
    list_display = ["entity", "code", "name", "synced_at"]
    list_filter = ["entity"]
    search_fields = ["code", "name"]


@admin.register(AccountingPeriod)
class PeriodAdmin(ReadOnlyAdmin):
    list_display = ["entity", "code", "start", "end", "closed"]
    list_filter = ["entity", "closed"]


@admin.register(PaymentTerm)
class PaymentTermAdmin(ReadOnlyAdmin):
    list_display = [
        "entity",
        "code",
        "name",
        "due_date_calculation",
        "discount_date_calculation",
        "discount_percent",
        "synced_at",
    ]
    list_filter = ["entity"]
    search_fields = ["code", "name"]


@admin.register(Currency)
class CurrencyAdmin(ReadOnlyAdmin):
    list_display = ["entity", "code", "name", "symbol", "decimals", "synced_at"]
    list_filter = ["entity"]
    search_fields = ["code", "name"]


@admin.register(Employee)
class EmployeeAdmin(ReadOnlyAdmin):
    list_display = ["entity", "code", "name", "email", "status"]
    list_filter = ["entity", "status"]
    search_fields = ["code", "name", "email"]


class ConnectionForm(forms.ModelForm):
    """Secrets are shown masked; leaving the mask keeps the stored value, typing a new one replaces it
    (encrypted on save), and "env:NAME" keeps it in the environment only."""

    class Meta:
        model = Connection
        fields = ["name", "kind", "role", "config", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["config"] = masked(self.instance.config)

    def clean_config(self):
        old = Connection.objects.filter(pk=self.instance.pk).values_list("config", flat=True).first() or {}
        return merged(self.cleaned_data["config"] or {}, old)


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["name", "kind", "role", "enabled", "health", "consecutive_failures", "last_ok_at"]
    readonly_fields = ["health", "consecutive_failures", "last_error", "last_ok_at", "master_data_synced_at"]

    def has_delete_permission(self, request, obj=None):
        return False  # its writes and incidents are history: disable it instead


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "name",
        "entity",
        "party_name",
        "total",
        "currency",
        "business_status",
        "financial_status",
    ]
    list_filter = ["financial_status", "entity"]
    search_fields = ["number", "name", "party_name", "source_id"]


@admin.register(ExceptionItem)
class ExceptionItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "code", "status", "entity", "amount_at_risk", "currency", "opened_at"]
    list_filter = ["code", "status", "category"]


# --- people, their roles and entity scope, API tokens ------------------------------------------------


class ScopeInline(admin.StackedInline):
    model = UserScope
    can_delete = False
    filter_horizontal = ["entities"]
    verbose_name_plural = "entity scope (which legal entities this person works on)"


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class PersonAdmin(UserAdmin):
    """People are deactivated, never deleted: their name stays on everything they did."""

    inlines = [ScopeInline]
    list_display = ["username", "first_name", "last_name", "email", "is_active", "is_staff"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """An integration client's key: shown once when created, stored only as its digest; revoke, never delete."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token, key = ApiToken.issue(obj.user, obj.name)
        obj.pk, obj.digest, obj.prefix = token.pk, token.digest, token.prefix
        messages.warning(request, f"Copy this key now, it is not shown again: {key}")
