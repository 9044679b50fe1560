from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from workbench.web.views import (
    alerts,
    audit,
    bulk,
    close,
    dashboard,
    discussion,
    documents,
    drift,
    exports,
    find,
    governance,
    inbox,
    items,
    mappings,
    masterdata,
    p2p,
    queue,
    reconciliation,
    saved_views,
    schedules,
    supplier_links,
    sync,
    work_jobs,
)

queue_patterns = (
    [
        path("", queue.queue, name="list"),
        path("assign/", queue.bulk_assign, name="bulk_assign"),
        path("bulk/preview/", bulk.bulk_preview, name="bulk_preview"),
        path("bulk/run/", bulk.bulk_run, name="bulk_run"),
        path("export.csv", exports.export, {"source": "queue", "fmt": "csv", "back": "queue:list"}, name="export_csv"),
        path(
            "export.xlsx", exports.export, {"source": "queue", "fmt": "xlsx", "back": "queue:list"}, name="export_xlsx"
        ),
        path("views/save/", saved_views.view_save, name="view_save"),
        path("views/<int:pk>/delete/", saved_views.view_delete, name="view_delete"),
        path("views/default/", saved_views.view_default, name="view_default"),
    ],
    "queue",
)
items_patterns = (
    [
        path("<int:pk>/", items.item_detail, name="detail"),
        path("<int:pk>/progress/", items.item_progress, name="progress"),
        path("<int:pk>/correct/", items.item_correct, name="correct"),
        path("<int:pk>/override/", items.item_override, name="override"),
        path("<int:pk>/override/decide/", items.item_override_decide, name="override_decide"),
        path("<int:pk>/evidence/", items.item_evidence, name="evidence"),
        path("<int:pk>/retry/", items.item_retry, name="retry"),
        path("<int:pk>/send-back/", items.item_send_back, name="send_back"),
        path("<int:pk>/assign/", items.item_assign, name="assign"),
        path("<int:pk>/snooze/", items.item_snooze, name="snooze"),
        path("<int:pk>/wake/", items.item_wake, name="wake"),
        path("<int:pk>/accept-variance/", p2p.accept_variance, name="accept_variance"),
        path("<int:pk>/credit-note/", p2p.request_credit_note, name="credit_note"),
        path("<int:pk>/route/", p2p.route_to_approver, name="route"),
        path("<int:pk>/reject-invoice/", p2p.reject_invoice, name="reject_invoice"),
        path("<int:pk>/pull-again/", drift.item_pull_again, name="pull_again"),
        path("<int:pk>/accept-erp/", drift.item_accept_erp, name="accept_erp"),
        path("<int:pk>/repost/", drift.item_repost, name="repost"),
        path("<int:pk>/comments/", discussion.item_comment, name="comment"),
        path("<int:pk>/watch/", discussion.item_watch, name="watch"),
    ],
    "items",
)
p2p_patterns = (
    [
        path("accruals/", p2p.accruals_page, name="accruals"),
        path("accruals/post/", p2p.accrual_post_view, name="accrual_post"),
        path("budgets/", p2p.budgets_page, name="budgets"),
        path(
            "accruals/export.csv",
            exports.export,
            {"source": "accruals", "fmt": "csv", "back": "p2p:accruals"},
            name="accruals_export_csv",
        ),
        path(
            "accruals/export.xlsx",
            exports.export,
            {"source": "accruals", "fmt": "xlsx", "back": "p2p:accruals"},
            name="accruals_export_xlsx",
        ),
        path(
            "budgets/export.csv",
            exports.export,
            {"source": "budgets", "fmt": "csv", "back": "p2p:budgets"},
            name="budgets_export_csv",
        ),
        path(
            "budgets/export.xlsx",
            exports.export,
            {"source": "budgets", "fmt": "xlsx", "back": "p2p:budgets"},
            name="budgets_export_xlsx",
        ),
        path("settings/", p2p.settings_page, name="settings"),
        path("settings/rules/", p2p.rule_save, name="rule_add"),
        path("settings/rules/<int:pk>/", p2p.rule_save, name="rule_edit"),
        path("settings/delegations/", p2p.delegation_save, name="delegation_add"),
        path("settings/tolerances/", p2p.tolerance_save_view, name="tolerance_add"),
        path("settings/tolerances/<int:pk>/", p2p.tolerance_save_view, name="tolerance_edit"),
        path("einvoices/", p2p.einvoice_upload_page, name="einvoices"),
    ],
    "p2p",
)
documents_patterns = (
    [
        path("", documents.document_list, name="list"),
        path("<int:pk>/", documents.document_detail, name="detail"),
        path("<int:pk>/comments/", discussion.document_comment, name="comment"),
        path("<int:pk>/watch/", discussion.document_watch, name="watch"),
        path("export.csv", exports.export, {"source": "documents", "fmt": "csv"}, name="export_csv"),
        path("export.xlsx", exports.export, {"source": "documents", "fmt": "xlsx"}, name="export_xlsx"),
    ],
    "documents",
)
inbox_patterns = (
    [
        path("", inbox.inbox_page, name="list"),
        path("<int:pk>/read/", inbox.inbox_read, name="read"),
        path("read-all/", inbox.inbox_read_all, name="read_all"),
        path("settings/", inbox.inbox_settings, name="settings"),
    ],
    "inbox",
)
evidence_patterns = ([path("<int:pk>/", items.evidence_download, name="download")], "evidence")
governance_patterns = (
    [
        path("", governance.policies_page, name="policies"),
        path("policies/", governance.policy_save, name="policy_save"),
        path("reasons/", governance.reason_save, name="reason_save"),
    ],
    "governance",
)
audit_patterns = (
    [
        path("", audit.trail_page, name="trail"),
        path("export/", audit.trail_export, name="export"),
        path("overrides/", audit.overrides_report, name="overrides"),
        path(
            "overrides/export.csv",
            exports.export,
            {"source": "overrides", "fmt": "csv", "back": "audit:overrides"},
            name="overrides_export_csv",
        ),
        path(
            "overrides/export.xlsx",
            exports.export,
            {"source": "overrides", "fmt": "xlsx", "back": "audit:overrides"},
            name="overrides_export_xlsx",
        ),
    ],
    "audit",
)
sync_patterns = (
    [
        path("", sync.sync_page, name="page"),
        path("connections/<int:pk>/run/<str:job>/", sync.run_now, name="run_now"),
        path("runs/<int:pk>/", sync.run_progress, name="run_progress"),
        path("schedules/", schedules.schedules_page, name="schedules"),
        path("reconciliation/", reconciliation.reconciliation_page, name="reconciliation"),
        path("reconciliation/<int:pk>/", reconciliation.reconciliation_page, name="reconciliation_run"),
        path(
            "reconciliation/<int:pk>/progress/", reconciliation.reconciliation_progress, name="reconciliation_progress"
        ),
        path("connections/<int:pk>/reconcile/", reconciliation.reconcile_now, name="reconcile_now"),
        path("reconciliation/retention/", reconciliation.retention_save, name="reconciliation_retention"),
        path("schedules/<int:pk>/", schedules.schedule_save, name="schedule_save"),
    ],
    "sync",
)

mappings_patterns = (
    [
        path("", mappings.mappings_page, name="list"),
        path("<int:pk>/", mappings.mappings_page, name="edit"),
        path("test/", mappings.mapping_test, name="test"),
        path("<int:pk>/test/", mappings.mapping_test, name="test_existing"),
        path("save/", mappings.mapping_save, name="save"),
        path("<int:pk>/save/", mappings.mapping_save, name="save_existing"),
        path("runs/<int:pk>/", mappings.mapping_run_progress, name="run"),
    ],
    "mappings",
)

masterdata_patterns = (
    [
        path("", masterdata.masterdata_page, name="page"),
        path("owner/", masterdata.owner_set, name="owner"),
        path("conflicts/<int:pk>/keep/", masterdata.conflict_keep, name="keep"),
    ],
    "masterdata",
)

suppliers_patterns = (
    [
        path("", supplier_links.supplier_links_page, name="list"),
        path("<int:pk>/confirm/", supplier_links.supplier_link_confirm_view, name="confirm"),
        path("<int:pk>/reject/", supplier_links.supplier_link_reject_view, name="reject"),
    ],
    "suppliers",
)

dashboard_patterns = ([path("", dashboard.dashboard, name="page")], "dashboard")
close_patterns = (
    [
        path("", close.close_page, name="page"),
        path("<int:pk>/", close.entity_page, name="entity"),
        path("<int:pk>/calendar/", close.calendar_save, name="calendar_save"),
        path("<int:pk>/days/", close.day_add, name="day_add"),
        path("days/<int:pk>/remove/", close.day_remove, name="day_remove"),
        path("periods/<int:pk>/", close.period_save, name="period_save"),
    ],
    "close",
)

jobs_patterns = (
    [
        path("<int:pk>/", work_jobs.job_detail, name="detail"),
        path("<int:pk>/progress/", work_jobs.job_progress, name="progress"),
        path("<int:pk>/download/", work_jobs.job_download, name="download"),
    ],
    "jobs",
)

alerts_patterns = (
    [
        path("", alerts.alerts_page, name="page"),
        path("rules/new/", alerts.rule_new, name="rule_new"),
        path("rules/<int:pk>/", alerts.rule_edit, name="rule_edit"),
        path("evaluate/", alerts.evaluate_now, name="evaluate"),
    ],
    "alerts",
)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="queue:list", permanent=False), name="home"),
    path("queue/", include(queue_patterns)),
    path("dashboard/", include(dashboard_patterns)),
    path("items/", include(items_patterns)),
    path("documents/", include(documents_patterns)),
    path("search/", find.search, name="search"),
    path("jobs/", include(jobs_patterns)),
    path("inbox/", include(inbox_patterns)),
    path("alerts/", include(alerts_patterns)),
    path("close/", include(close_patterns)),
    path("evidence/", include(evidence_patterns)),
    path("governance/overrides/", include(governance_patterns)),
    path("audit/", include(audit_patterns)),
    path("sync/", include(sync_patterns)),
    path("p2p/", include(p2p_patterns)),
    path("mappings/", include(mappings_patterns)),
    path("masterdata/suppliers/", include(suppliers_patterns)),
    path("masterdata/", include(masterdata_patterns)),
    path("accounts/", include("workbench.web.accounts_urls")),  # password reset only with mail configured
    path("oidc/", include("workbench.web.oidc")),  # single sign-on (mozilla-django-oidc); 404 while it is off
    path("admin/", admin.site.urls),
    path("api/", include("workbench.web.api.urls")),
    path("healthz", login_not_required(items.healthz), name="healthz"),
]
