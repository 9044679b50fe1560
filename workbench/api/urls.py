from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from .views import DocumentViewSet, ExceptionItemViewSet

router = DefaultRouter()
router.register("exceptions", ExceptionItemViewSet, basename="exception")
router.register("documents", DocumentViewSet, basename="document")

urlpatterns = [
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The docs page is a screen: logged-out readers go to the login page like everywhere else.
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="schema")), name="api-docs"),
]
