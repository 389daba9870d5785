"""The error codes billing raises (ApplicationError.code), in one place.

Clients and tests match on these strings (the API renders them as `code`), so the values never
change; a StrEnum compares and serializes as its plain string. Field errors use common's
CommonErrorCode.INVALID and missing rows CommonErrorCode.NOT_FOUND.
"""

from enum import StrEnum


class BillingErrorCode(StrEnum):
    # Paying an invoice (billing.services.payments, billing.services.stripe_payments).
    ALREADY_PAID = "already_paid"
    INVOICE_NOT_PAYABLE = "invoice_not_payable"
    AMOUNT_MISMATCH = "amount_mismatch"
    DUPLICATE_PAYMENT = "duplicate_payment"
    # Confirming and cancelling orders (billing.services.confirmation, billing.services.orders).
    ORDER_ALREADY_CONFIRMED = "order_already_confirmed"
    ORDER_CANCELLED = "order_cancelled"
    # Staff provisioning an order by API (billing.services.order_provisioning).
    ORDER_NOT_PAID = "order_not_paid"
    ORDER_NOT_CANCELLABLE = "order_not_cancellable"
    # Refunding a paid order without a server (billing.services.waiting_orders).
    ORDER_NOT_REFUNDABLE = "order_not_refundable"
    ORDER_HAS_SERVER = "order_has_server"
    REFUND_NOT_POSSIBLE = "refund_not_possible"
    # Sign-up (billing.services.customers).
    RETRY = "retry"
    INVALID_LINK = "invalid_link"
    # Account settings (billing.services.accounts).
    EMAIL_NOT_VERIFIED = "email_not_verified"
    # Too many verification / e-mail change links asked for in a short time.
    TOO_MANY_MAILS = "too_many_mails"
    # Stripe (billing.stripe_client): its error types' codes and the webhook refusals.
    STRIPE_NOT_CONFIGURED = "stripe_not_configured"
    STRIPE_UNAVAILABLE = "stripe_unavailable"
    STRIPE_REJECTED = "stripe_rejected"
    WEBHOOK_REJECTED = "webhook_rejected"
    INVALID_SIGNATURE = "invalid_signature"
    INVALID_EVENT = "invalid_event"
    # Account credit (billing.services.credit).
    INSUFFICIENT_CREDIT = "insufficient_credit"
    # Upgrades and downgrades (billing.services.plan_changes).
    PLAN_CHANGE_NOT_ALLOWED = "plan_change_not_allowed"
    PLAN_CHANGE_PENDING = "plan_change_pending"
    PLAN_DOES_NOT_FIT_NODE = "plan_does_not_fit_node"
    # Cancellations (billing.services.cancellations).
    CANCELLATION_NOT_ALLOWED = "cancellation_not_allowed"
    CANCELLATION_PENDING = "cancellation_pending"
    CANCELLATION_NOT_REVOCABLE = "cancellation_not_revocable"
    # Saved cards and off-session charges (billing.services.autocharge).
    PAYMENT_METHOD_NOT_FOUND = "payment_method_not_found"
