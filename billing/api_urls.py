from django.urls import path

from billing import (
    apis,
    apis_cancellations,
    apis_credit,
    apis_payment_methods,
    apis_plan_changes,
    apis_servers,
)

urlpatterns = [
    path("servers/", apis_servers.ServerListApi.as_view(), name="api-server-list"),
    path(
        "servers/<int:deployment_id>/",
        apis_servers.ServerDetailApi.as_view(),
        name="api-server-detail",
    ),
    path(
        "servers/<int:deployment_id>/power/",
        apis_servers.ServerPowerApi.as_view(),
        name="api-server-power",
    ),
    path(
        "servers/<int:deployment_id>/login/",
        apis_servers.ServerLoginApi.as_view(),
        name="api-server-login",
    ),
    path(
        "servers/<int:deployment_id>/suspend/",
        apis_servers.ServerSuspendApi.as_view(),
        name="api-server-suspend",
    ),
    path(
        "servers/<int:deployment_id>/unsuspend/",
        apis_servers.ServerUnsuspendApi.as_view(),
        name="api-server-unsuspend",
    ),
    path(
        "servers/<int:deployment_id>/terminate/",
        apis_servers.ServerTerminateApi.as_view(),
        name="api-server-terminate",
    ),
    path(
        "servers/<int:deployment_id>/change-plan/",
        apis_servers.ServerChangePlanApi.as_view(),
        name="api-server-change-plan",
    ),
    path(
        "servers/<int:deployment_id>/plan-changes/options/",
        apis_plan_changes.PlanChangeOptionsApi.as_view(),
        name="api-server-plan-change-options",
    ),
    path(
        "servers/<int:deployment_id>/plan-changes/",
        apis_plan_changes.PlanChangeListCreateApi.as_view(),
        name="api-server-plan-changes",
    ),
    path(
        "servers/<int:deployment_id>/plan-changes/<int:change_id>/cancel/",
        apis_plan_changes.PlanChangeCancelApi.as_view(),
        name="api-server-plan-change-cancel",
    ),
    path(
        "servers/<int:deployment_id>/cancellation/",
        apis_cancellations.ServerCancellationApi.as_view(),
        name="api-server-cancellation",
    ),
    path(
        "servers/<int:deployment_id>/cancellation/revoke/",
        apis_cancellations.ServerCancellationRevokeApi.as_view(),
        name="api-server-cancellation-revoke",
    ),
    path("plans/", apis.PlanListApi.as_view(), name="api-plan-list"),
    path("plans/<slug:slug>/", apis.PlanDetailApi.as_view(), name="api-plan-detail"),
    path("locations/", apis.LocationListApi.as_view(), name="api-location-list"),
    path("orders/", apis.OrderListCreateApi.as_view(), name="api-order-list"),
    path("orders/<int:order_id>/", apis.OrderDetailApi.as_view(), name="api-order-detail"),
    path("orders/<int:order_id>/cancel/", apis.OrderCancelApi.as_view(), name="api-order-cancel"),
    path("credit/", apis_credit.CreditApi.as_view(), name="api-credit"),
    path(
        "payment-methods/",
        apis_payment_methods.PaymentMethodListApi.as_view(),
        name="api-payment-method-list",
    ),
    path(
        "payment-methods/setup/",
        apis_payment_methods.PaymentMethodSetupApi.as_view(),
        name="api-payment-method-setup",
    ),
    path(
        "payment-methods/<int:payment_method_id>/",
        apis_payment_methods.PaymentMethodDetailApi.as_view(),
        name="api-payment-method-detail",
    ),
    path(
        "payment-methods/<int:payment_method_id>/default/",
        apis_payment_methods.PaymentMethodDefaultApi.as_view(),
        name="api-payment-method-default",
    ),
    path("invoices/", apis.InvoiceListApi.as_view(), name="api-invoice-list"),
    path("invoices/<int:invoice_id>/", apis.InvoiceDetailApi.as_view(), name="api-invoice-detail"),
    path(
        "invoices/<int:invoice_id>/checkout/",
        apis.InvoiceCheckoutApi.as_view(),
        name="api-invoice-checkout",
    ),
    path(
        "invoices/<int:invoice_id>/confirm-payment/",
        apis.InvoiceConfirmPaymentApi.as_view(),
        name="api-invoice-confirm-payment",
    ),
]
