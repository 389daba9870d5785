from django.contrib.auth import views as auth_views
from django.urls import path

from billing.views import (
    account,
    cancellations,
    credit,
    dashboard,
    live,
    payment_methods,
    plan_changes,
    shop,
    tokens,
    webhooks,
)
from notifications.i18n import LocalizedPasswordResetForm

urlpatterns = [
    path("", shop.plan_list, name="plan-list"),
    path("plans/<slug:slug>/order/", shop.order_configure, name="order-configure"),
    path("plans/<slug:slug>/order/place/", shop.order_place_view, name="order-place"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/live/", live.dashboard_live, name="dashboard-live"),
    path("orders/<int:order_id>/live/", live.order_live, name="order-live"),
    path("servers/<int:deployment_id>/live/", live.deployment_live, name="deployment-live"),
    path("orders/<int:order_id>/", dashboard.order_detail, name="order-detail"),
    path("orders/<int:order_id>/cancel/", dashboard.order_cancel_view, name="order-cancel"),
    path("invoices/<int:invoice_id>/", dashboard.invoice_detail, name="invoice-detail"),
    path("invoices/<int:invoice_id>/pdf/", dashboard.invoice_pdf_view, name="invoice-pdf"),
    path("servers/<int:deployment_id>/", dashboard.deployment_detail, name="deployment-detail"),
    path("servers/<int:deployment_id>/power/", dashboard.deployment_power, name="deployment-power"),
    path(
        "servers/<int:deployment_id>/resend-login/",
        dashboard.deployment_resend_login,
        name="deployment-resend-login",
    ),
    path(
        "servers/<int:deployment_id>/plan/",
        plan_changes.deployment_plan_change,
        name="deployment-plan-change",
    ),
    path(
        "plan-changes/<int:change_id>/cancel/",
        plan_changes.plan_change_cancel_view,
        name="plan-change-cancel",
    ),
    path(
        "servers/<int:deployment_id>/cancel/",
        cancellations.deployment_cancellation,
        name="deployment-cancellation",
    ),
    path(
        "servers/<int:deployment_id>/cancel/revoke/",
        cancellations.deployment_cancellation_revoke,
        name="deployment-cancellation-revoke",
    ),
    path(
        "invoices/<int:invoice_id>/pay/card/", dashboard.invoice_pay_card, name="invoice-pay-card"
    ),
    path("accounts/signup/", account.signup, name="signup"),
    path("accounts/signup/sent/", account.signup_done, name="signup-done"),
    path(
        "accounts/signup/confirm/<uidb64>/<token>/",
        account.signup_confirm,
        name="signup-confirm",
    ),
    path("accounts/profile/", account.profile, name="profile"),
    path("accounts/profile/name/", account.profile_name, name="profile-name"),
    path("accounts/profile/billing/", account.profile_billing, name="profile-billing"),
    path(
        "accounts/profile/whatsapp/verify/",
        account.profile_whatsapp_verify,
        name="profile-whatsapp-verify",
    ),
    path("accounts/email/change/", account.email_change, name="account-email-change"),
    path(
        "accounts/email/change/<str:token>/",
        account.email_change_confirm,
        name="account-email-change-confirm",
    ),
    path(
        "accounts/email/verify/send/",
        account.verification_send,
        name="account-verification-send",
    ),
    path("accounts/email/verify/<str:token>/", account.email_verify, name="account-email-verify"),
    path(
        "accounts/password/change/",
        account.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/change/done/",
        account.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/payment-methods/", payment_methods.payment_methods, name="payment-methods"),
    path(
        "accounts/payment-methods/add/",
        payment_methods.payment_method_add,
        name="payment-method-add",
    ),
    path(
        "accounts/payment-methods/<int:payment_method_id>/default/",
        payment_methods.payment_method_default,
        name="payment-method-default",
    ),
    path(
        "accounts/payment-methods/<int:payment_method_id>/remove/",
        payment_methods.payment_method_delete,
        name="payment-method-remove",
    ),
    path("accounts/credit/", credit.credit_overview, name="account-credit"),
    path("accounts/tokens/", tokens.api_tokens, name="account-tokens"),
    path(
        "accounts/tokens/<int:token_id>/revoke/",
        tokens.api_token_revoke_view,
        name="account-token-revoke",
    ),
    path("accounts/login/", account.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password-reset/",
        auth_views.PasswordResetView.as_view(form_class=LocalizedPasswordResetForm),
        name="password_reset",
    ),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        account.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("webhooks/stripe/", webhooks.stripe_webhook, name="stripe-webhook"),
]
