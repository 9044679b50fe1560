from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from . import kpis, p2p
from .views import DocumentViewSet, ExceptionItemViewSet

router = DefaultRouter()
router.register("exceptions", ExceptionItemViewSet, basename="exception")
router.register("documents", DocumentViewSet, basename="document")

urlpatterns = [
    path("", include(router.urls)),
    path("p2p/requisitions/validate/", p2p.requisition_validate, name="p2p-requisition-validate"),
    path("p2p/requisitions/", p2p.requisition_create, name="p2p-requisition-create"),
    path("p2p/budgets/check/", p2p.budget_check, name="p2p-budget-check"),
    path("p2p/purchase-orders/", p2p.purchase_order_create, name="p2p-po-create"),
    path("p2p/approvals/decisions/", p2p.approval_decision, name="p2p-approval-decision"),
    path("p2p/invoices/<int:pk>/status/", p2p.invoice_status, name="p2p-invoice-status"),
    path("p2p/einvoices/", p2p.einvoice_upload, name="p2p-einvoice"),
    path("kpis/", kpis.kpis_view, name="kpis"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The docs page is a screen: logged-out readers go to the login page like everywhere else.
    path("docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"),
]
