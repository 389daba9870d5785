"""Saved cards, their Stripe Customers and the off-session charges of renewals, read only.

Nothing here holds card data: Stripe keeps the card; we show its brand, last four digits and
expiry. The charge list is fleet-sized: its filter is a choices field, rows come with their
invoice and card in the same query, and no full count is run.
"""

from django.contrib import admin

from billing.models import AutoChargeAttempt, SavedPaymentMethod, StripeCustomer
from common.admin import ReadOnlyAdmin


@admin.register(StripeCustomer)
class StripeCustomerAdmin(ReadOnlyAdmin):
    list_display = ("stripe_customer_id", "customer", "created_at")
    search_fields = ("stripe_customer_id", "customer__username", "customer__email")
    list_select_related = ("customer",)
    show_full_result_count = False


@admin.register(SavedPaymentMethod)
class SavedPaymentMethodAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "customer",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "is_default",
        "removed_at",
        "created_at",
    )
    list_filter = ("is_default", ("removed_at", admin.EmptyFieldListFilter))
    search_fields = ("stripe_payment_method_id", "customer__username", "customer__email", "last4")
    list_select_related = ("customer",)
    show_full_result_count = False


@admin.register(AutoChargeAttempt)
class AutoChargeAttemptAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "invoice",
        "attempt_number",
        "status",
        "amount",
        "currency",
        "payment_method",
        "failure_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("invoice__number", "payment_intent_id", "idempotency_key")
    list_select_related = ("invoice", "payment_method")
    show_full_result_count = False
    readonly_fields = (
        "invoice",
        "payment_method",
        "attempt_number",
        "idempotency_key",
        "amount",
        "currency",
        "payment_intent_id",
        "status",
        "failure_code",
        "failure_message",
        "next_attempt_at",
        "created_at",
        "updated_at",
    )
