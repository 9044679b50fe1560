"""Admin: connections and exception codes are editable by admins; ERP master data is read-only."""

from django.contrib import admin

from workbench.models import (
    AccountingPeriod,
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
)


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
    list_display = ["entity", "code", "name", "due_date_calculation", "discount_percent", "synced_at"]
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


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "role", "enabled", "health", "consecutive_failures", "last_ok_at"]
    readonly_fields = ["health", "consecutive_failures", "last_error", "last_ok_at", "master_data_synced_at"]


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
