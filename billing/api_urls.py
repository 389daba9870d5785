from django.urls import path

from billing import apis

urlpatterns = [
    path("plans/", apis.PlanListApi.as_view(), name="api-plan-list"),
    path("plans/<slug:slug>/", apis.PlanDetailApi.as_view(), name="api-plan-detail"),
    path("locations/", apis.LocationListApi.as_view(), name="api-location-list"),
    path("orders/", apis.OrderListCreateApi.as_view(), name="api-order-list"),
    path("orders/<int:order_id>/", apis.OrderDetailApi.as_view(), name="api-order-detail"),
    path("orders/<int:order_id>/cancel/", apis.OrderCancelApi.as_view(), name="api-order-cancel"),
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
