"""Money records, read only: payments, Stripe Checkout sessions and received Stripe events."""

from django.contrib import admin

from billing.models import CheckoutSession, Payment, StripeEvent
from common.admin import ReadOnlyAdmin


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "invoice",
        "provider",
        "amount",
        "currency",
        "reference",
        "status",
        "actor_label",
        "created_at",
    )
    list_filter = ("provider", "status", "currency")
    search_fields = ("reference", "invoice__number")


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_session_id",
        "invoice",
        "status",
        "amount_minor",
        "currency",
        "expires_at",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("stripe_session_id", "invoice__number")
    exclude = ("url",)  # the checkout URL is a bearer link to pay; not needed in lists


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "status", "invoice", "received_at", "message")
    list_filter = ("status", "type", "livemode")
    search_fields = ("event_id", "invoice__number", "message")
