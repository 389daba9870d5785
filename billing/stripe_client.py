"""The one module that speaks to Stripe (Checkout sessions, refunds and webhook signatures)."""

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings

from billing.errors import BillingErrorCode
from common.errors import ApplicationError
from common.jsonsafe import json_loads_bounded

logger = logging.getLogger(__name__)


class StripeNotConfigured(ApplicationError):
    default_code = BillingErrorCode.STRIPE_NOT_CONFIGURED
    http_status = 503


class StripeUnavailable(ApplicationError):
    """Stripe could not be reached or answered 5xx/429: try again later (retryable)."""

    default_code = BillingErrorCode.STRIPE_UNAVAILABLE
    http_status = 503
    retryable = True


class StripeRequestRejected(ApplicationError):
    """Stripe refused the request (4xx): retrying the same request will not help."""

    default_code = BillingErrorCode.STRIPE_REJECTED
    http_status = 502
    retryable = False


class WebhookRejected(ApplicationError):
    default_code = BillingErrorCode.WEBHOOK_REJECTED
    http_status = 400


@dataclass(frozen=True)
class CheckoutSessionResult:
    id: str
    url: str
    amount_total: int
    currency: str
    expires_at: dt.datetime | None


def _client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise StripeNotConfigured("Card payments are not configured (STRIPE_SECRET_KEY).")
    options: dict[str, Any] = {
        "http_client": stripe.RequestsClient(timeout=settings.STRIPE_API_TIMEOUT),
        "max_network_retries": 2,  # Stripe makes creates idempotent with our key
    }
    if settings.STRIPE_API_BASE:
        options["base_addresses"] = {"api": settings.STRIPE_API_BASE}
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, **options)


def checkout_session_create(
    *,
    invoice_id: int,
    invoice_number: str,
    amount_minor: int,
    currency: str,
    description: str,
    customer_email: str,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
) -> CheckoutSessionResult:
    params: dict[str, Any] = {
        "mode": "payment",
        "client_reference_id": str(invoice_id),
        "customer_email": customer_email or None,
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency.lower(),
                    "unit_amount": amount_minor,
                    "product_data": {
                        "name": f"Invoice {invoice_number}",
                        "description": description,
                    },
                },
            }
        ],
        "metadata": {"invoice_id": str(invoice_id), "invoice_number": invoice_number},
        "payment_intent_data": {"metadata": {"invoice_id": str(invoice_id)}},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    params = {k: v for k, v in params.items() if v is not None}
    try:
        session = _client().v1.checkout.sessions.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise StripeUnavailable("Card payments are unavailable right now; try again.") from exc
    except stripe.StripeError as exc:
        status = getattr(exc, "http_status", None) or 0
        logger.warning("stripe refused checkout session for %s: %s", invoice_number, exc.code)
        if status >= 500:
            raise StripeUnavailable("Card payments are unavailable right now; try again.") from exc
        raise StripeRequestRejected(
            "The card payment could not be started; please contact support."
        ) from exc
    # Attribute access: StripeObject stopped behaving as a dict in newer releases.
    expires = getattr(session, "expires_at", None)
    return CheckoutSessionResult(
        id=session.id,
        url=getattr(session, "url", None) or "",
        amount_total=int(getattr(session, "amount_total", None) or amount_minor),
        currency=(getattr(session, "currency", None) or currency).upper(),
        expires_at=dt.datetime.fromtimestamp(expires, tz=dt.UTC) if expires else None,
    )


def checkout_session_expire(*, session_id: str) -> None:
    """Close an open Checkout session so it can no longer be paid. An already completed or
    expired session is fine (Stripe answers 400 for those)."""
    try:
        _client().v1.checkout.sessions.expire(session_id)
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise StripeUnavailable("Stripe could not be reached to close a payment page.") from exc
    except stripe.InvalidRequestError:
        logger.info("checkout session %s was no longer open at Stripe", session_id)
    except stripe.StripeError as exc:
        if (getattr(exc, "http_status", None) or 0) >= 500:
            raise StripeUnavailable("Stripe failed to close a payment page.") from exc
        raise StripeRequestRejected("Stripe refused to close a payment page.") from exc


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str  # pending, succeeded, failed, requires_action, canceled
    amount: int
    currency: str


def refund_create(
    *, payment_intent: str, amount_minor: int, idempotency_key: str, metadata: dict[str, str]
) -> RefundResult:
    """Refund (part of) a PaymentIntent. The idempotency key makes a repeated call (a retry
    after a lost reply, a double click) return the first refund instead of paying twice."""
    try:
        refund = _client().v1.refunds.create(
            params={
                "payment_intent": payment_intent,
                "amount": amount_minor,
                "reason": "requested_by_customer",
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise StripeUnavailable("Stripe could not be reached to refund; try again.") from exc
    except stripe.StripeError as exc:
        status = getattr(exc, "http_status", None) or 0
        logger.warning("stripe refused refund of %s: %s", payment_intent, exc.code)
        if status >= 500:
            raise StripeUnavailable("Stripe failed to refund; try again.") from exc
        raise StripeRequestRejected(
            f"Stripe refused the refund ({exc.code or status}); see the Stripe dashboard."
        ) from exc
    return RefundResult(
        id=refund.id,
        status=getattr(refund, "status", None) or "pending",
        amount=int(getattr(refund, "amount", None) or amount_minor),
        currency=(getattr(refund, "currency", None) or "").upper(),
    )


def webhook_event_verify(*, payload: bytes, signature_header: str) -> dict[str, Any]:
    """Verify the Stripe-Signature header against each configured secret; return the event.

    Accepts a signature made with any configured secret (rotation), within the tolerance.
    Raises WebhookRejected with code "invalid_signature" (forged, unsigned, stale) or
    "invalid_event" (signed, but not in Stripe's event format: too deep, ids too long for our
    columns, an absurd `created`), before anything is stored.
    """
    secrets = settings.STRIPE_WEBHOOK_SECRETS
    if not secrets:
        raise WebhookRejected("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRETS).")
    if not signature_header:
        raise WebhookRejected(
            "Missing Stripe-Signature header.", code=BillingErrorCode.INVALID_SIGNATURE
        )
    # Stripe sends t=<digits>,v1=<hex>. The library compares str with hmac.compare_digest,
    # which raises TypeError on non-ASCII, and int() accepts non-ASCII digits.
    if not signature_header.isascii():
        raise WebhookRejected(
            "Invalid Stripe signature: the header is not ASCII.",
            code=BillingErrorCode.INVALID_SIGNATURE,
        )
    text = payload.decode("utf-8", errors="replace")
    last_error: Exception | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(
                text, signature_header, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
            )
            break
        except stripe.SignatureVerificationError as exc:
            last_error = exc
        except (TypeError, ValueError) as exc:  # whatever else odd headers make it raise
            last_error = exc
    else:
        reason = (
            str(getattr(last_error, "user_message", None) or "bad signature")
            if isinstance(last_error, stripe.SignatureVerificationError)
            else "malformed header"
        )
        raise WebhookRejected(
            f"Invalid Stripe signature: {reason}", code=BillingErrorCode.INVALID_SIGNATURE
        )
    try:
        # Bounded: a signed body nested 100k deep would make json.loads raise RecursionError.
        event = json_loads_bounded(text)
    except ValueError as exc:
        raise WebhookRejected(
            f"Stripe webhook body is not usable JSON: {exc}"[:200],
            code=BillingErrorCode.INVALID_EVENT,
        ) from None
    _webhook_event_check(event)
    return event


# Stripe's documented limits fit our StripeEvent columns; anything beyond is not a real event.
_EVENT_ID_MAX, _EVENT_TYPE_MAX = 255, 100
# 9999-12-31T23:59:59Z: the last second datetime can hold.
_CREATED_MAX = 253_402_300_799


def _webhook_event_check(event: Any) -> None:
    """Refuse (invalid_event) a signed body that is not shaped like a Stripe event."""

    def bad(reason: str) -> WebhookRejected:
        return WebhookRejected(
            f"Stripe webhook body is not an event: {reason}.", code=BillingErrorCode.INVALID_EVENT
        )

    if not isinstance(event, dict):
        raise bad("not an object")
    for key, limit in (("id", _EVENT_ID_MAX), ("type", _EVENT_TYPE_MAX)):
        value = event.get(key)
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise bad(f"{key} must be a string of 1 to {limit} characters")
        if not value.isprintable():  # NUL and control characters: PostgreSQL refuses NUL
            raise bad(f"{key} holds control characters")
    created = event.get("created")
    if created is not None and (
        not isinstance(created, int)
        or isinstance(created, bool)
        or not 0 <= created <= _CREATED_MAX
    ):
        raise bad("created must be a Unix time")
    if not isinstance(event.get("livemode", False), bool):
        raise bad("livemode must be true or false")
