"""/api/v1/provisioning/ routes that name an order (billing.apis_provisioning); the others are
provisioning.api_urls (same prefix)."""

from django.urls import path

from billing import apis_provisioning

urlpatterns = [
    path("provision/", apis_provisioning.ProvisionApi.as_view(), name="api-provisioning-provision"),
    path("manual/", apis_provisioning.ManualProvisionApi.as_view(), name="api-provisioning-manual"),
]
