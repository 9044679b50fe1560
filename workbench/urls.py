from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from workbench.views import documents, items, queue, sync

queue_patterns = ([path("", queue.queue, name="list"), path("assign/", queue.bulk_assign, name="bulk_assign")], "queue")
items_patterns = ([
    path("<int:pk>/", items.item_detail, name="detail"),
    path("<int:pk>/progress/", items.item_progress, name="progress"),
    path("<int:pk>/correct/", items.item_correct, name="correct"),
    path("<int:pk>/override/", items.item_override, name="override"),
    path("<int:pk>/retry/", items.item_retry, name="retry"),
    path("<int:pk>/send-back/", items.item_send_back, name="send_back"),
    path("<int:pk>/assign/", items.item_assign, name="assign"),
], "items")
documents_patterns = ([path("<int:pk>/", documents.document_detail, name="detail")], "documents")
sync_patterns = ([
    path("", sync.sync_page, name="page"),
    path("connections/<int:pk>/run/<str:job>/", sync.run_now, name="run_now"),
    path("runs/<int:pk>/", sync.run_progress, name="run_progress"),
], "sync")

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="queue:list", permanent=False)),
    path("queue/", include(queue_patterns)),
    path("items/", include(items_patterns)),
    path("documents/", include(documents_patterns)),
    path("sync/", include(sync_patterns)),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("workbench.api.urls")),
    path("healthz", login_not_required(items.healthz), name="healthz"),
]
