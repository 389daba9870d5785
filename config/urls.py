from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from common.health import healthz, readyz
from common.metrics import metrics_view
from notifications.i18n import set_language

urlpatterns = [
    path("admin/", admin.site.urls),
    # The staff provisioning API: the order-addressed writes are billing's (it knows orders).
    path("api/v1/provisioning/", include("billing.api_provisioning_urls")),
    path("api/v1/provisioning/", include("provisioning.api_urls")),
    path("api/v1/", include("billing.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("notifications/", include("notifications.urls")),
    # Django's set_language (the language switcher), which also saves the profile language.
    path("i18n/setlang/", set_language, name="set_language"),
    # Served by common.health.OperationsEndpointsMiddleware before any other middleware; listed
    # here for reverse() (and in case the middleware is left out).
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("billing.urls")),
]

# JSON errors under /api/ (unknown paths, non-integer ids, oversized bodies, unhandled
# exceptions); the branded HTML pages (templates/403.html, 404.html, 500.html) elsewhere.
handler400 = "common.api.bad_request"
handler403 = "common.api.permission_denied"
handler404 = "common.api.page_not_found"
handler500 = "common.api.server_error"
