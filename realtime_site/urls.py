"""Top-level URL routes: pages, admin, the OpenAI-shaped API, health and metrics."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from apps.api.views.health import healthz
from apps.api.views.metrics import metrics_view
from apps.web.views import favicon

admin.site.site_header = "Realtime voice platform"
admin.site.site_title = "Realtime admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's).
    path("favicon.ico", favicon, name="favicon"),
    # WebRTC calls first: /v1/realtime (POST) and /v1/realtime/calls are theirs.
    path("", include("apps.rtc.urls")),
    path("v1/", include("apps.api.urls")),
    path("", include("apps.web.urls")),
]
# Uploaded portraits: served by Django while developing; put a proxy in front in production.
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
