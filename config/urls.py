from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("billing.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("notifications/", include("notifications.urls")),
    path("", include("billing.urls")),
]

# JSON errors under /api/ (unknown paths, non-integer ids, oversized bodies); HTML elsewhere.
handler400 = "common.api.bad_request"
handler404 = "common.api.page_not_found"
