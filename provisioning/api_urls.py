"""/api/v1/provisioning/: the staff provisioning API (provisioning.apis). The order-addressed
writes (provision/, manual/) are billing's (billing.api_provisioning_urls, same prefix)."""

from django.urls import path

from provisioning import apis

urlpatterns = [
    path("tasks/", apis.RunListApi.as_view(), name="api-provisioning-tasks"),
    path("tasks/<int:run_id>/", apis.RunDetailApi.as_view(), name="api-provisioning-task"),
    path("retry/<int:run_id>/", apis.RunRetryApi.as_view(), name="api-provisioning-retry"),
    path("stats/", apis.StatsApi.as_view(), name="api-provisioning-stats"),
    path("failed/", apis.FailedRunsApi.as_view(), name="api-provisioning-failed"),
]
