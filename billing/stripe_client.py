"""The one module that speaks to Stripe (Checkout sessions, refunds, customers and saved cards,
off-session charges, webhook signatures). No card number ever passes through here: Stripe keeps
the card; we see its id, brand, last four digits and expiry."""

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum
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


def _stripe_error(exc: stripe.StripeError, *, what: str) -> ApplicationError:
    """Our error for a Stripe failure that is not a card's answer: retryable or terminal."""
    status = getattr(exc, "http_status", None) or 0
    # 409: the same idempotency key is in flight in another request; its answer comes later.
    retryable = isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError)
    if retryable or status >= 500 or status == 409:
        return StripeUnavailable(f"Stripe could not be reached to {what}; try again.")
    logger.warning("stripe refused to %s: %s (%s)", what, exc.code, status)
    return StripeRequestRejected(f"Stripe refused to {what} ({exc.code or status}).")


def _attr(obj: Any, name: str) -> Any:
    """A field of a StripeObject or of a plain dict (an error body), or None."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _id(obj: Any) -> str:
    """The id of an expandable field: an id string or an expanded object."""
    if isinstance(obj, str):
        return obj
    value = _attr(obj, "id") if obj is not None else None
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class CustomerResult:
    id: str


def customer_create(
    *, email: str, name: str, metadata: dict[str, str], idempotency_key: str
) -> CustomerResult:
    """A Stripe Customer for one portal account; the key (from the account's id) makes a
    repeated call return the same customer."""
    params: dict[str, Any] = {"metadata": metadata}
    if email:
        params["email"] = email
    if name:
        params["name"] = name
    try:
        customer = _client().v1.customers.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    except stripe.StripeError as exc:
        raise _stripe_error(exc, what="create a customer") from exc
    return CustomerResult(id=customer.id)


@dataclass(frozen=True)
class SetupSessionResult:
    id: str
    url: str


def checkout_setup_session_create(
    *,
    customer_id: str,
    success_url: str,
    cancel_url: str,
    currency: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> SetupSessionResult:
    """A Checkout session in setup mode: the customer enters a card on Stripe's page, Stripe
    saves it on their Customer for later off-session charges (its webhook tells us)."""
    params: dict[str, Any] = {
        "mode": "setup",
        "customer": customer_id,
        "currency": currency.lower(),
        "payment_method_types": ["card"],
        "metadata": metadata,
        "setup_intent_data": {"metadata": metadata},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    try:
        session = _client().v1.checkout.sessions.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    except stripe.StripeError as exc:
        raise _stripe_error(exc, what="open the card page") from exc
    return SetupSessionResult(id=session.id, url=getattr(session, "url", None) or "")


@dataclass(frozen=True)
class SetupIntentResult:
    id: str
    status: str
    customer_id: str
    payment_method_id: str


def setup_intent_retrieve(*, setup_intent_id: str) -> SetupIntentResult:
    try:
        intent = _client().v1.setup_intents.retrieve(setup_intent_id)
    except stripe.StripeError as exc:
        raise _stripe_error(exc, what="read a card setup") from exc
    return SetupIntentResult(
        id=intent.id,
        status=_attr(intent, "status") or "",
        customer_id=_id(_attr(intent, "customer")),
        payment_method_id=_id(_attr(intent, "payment_method")),
    )


@dataclass(frozen=True)
class PaymentMethodResult:
    """What the customer sees of a saved card (never the number)."""

    id: str
    customer_id: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None


def payment_method_retrieve(*, payment_method_id: str) -> PaymentMethodResult:
    try:
        method = _client().v1.payment_methods.retrieve(payment_method_id)
    except stripe.StripeError as exc:
        raise _stripe_error(exc, what="read a saved card") from exc
    card = _attr(method, "card")
    exp_month, exp_year = _attr(card, "exp_month"), _attr(card, "exp_year")
    return PaymentMethodResult(
        id=method.id,
        customer_id=_id(_attr(method, "customer")),
        brand=str(_attr(card, "brand") or _attr(method, "type") or "")[:40],
        last4=str(_attr(card, "last4") or "")[:4],
        exp_month=exp_month if isinstance(exp_month, int) else None,
        exp_year=exp_year if isinstance(exp_year, int) else None,
    )


def payment_method_detach(*, payment_method_id: str) -> None:
    """Remove a saved card from its Stripe Customer. Already detached (or gone) is fine."""
    try:
        _client().v1.payment_methods.detach(payment_method_id)
    except stripe.InvalidRequestError as exc:
        if (getattr(exc, "http_status", None) or 0) < 500:
            logger.info("payment method %s was not attached at Stripe", payment_method_id)
            return
        raise _stripe_error(exc, what="remove a saved card") from exc
    except stripe.StripeError as exc:
        raise _stripe_error(exc, what="remove a saved card") from exc


class ChargeStatus(StrEnum):
    """The synchronous answer to an off-session charge (the webhook still decides the money)."""

    SUCCEEDED = "succeeded"
    PROCESSING = "processing"
    # The bank wants the customer (SCA): only they can pay it, on-session.
    REQUIRES_ACTION = "requires_action"
    DECLINED = "declined"
    # Stripe refused the request itself (not the card): e.g. the card is no longer attached.
    ERROR = "error"


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    payment_intent_id: str = ""
    # Stripe's error code (card_declined, authentication_required, expired_card, ...) and the
    # issuer's decline_code (insufficient_funds, ...); `message` is Stripe's text, safe to show.
    error_code: str = ""
    decline_code: str = ""
    message: str = ""


# Stripe's error codes that mean the bank wants the customer to authenticate (SCA).
_AUTHENTICATION_CODES = {"authentication_required"}


def charge_status_for(*, code: str, decline_code: str) -> ChargeStatus:
    """A failed payment's status from Stripe's error code and decline code."""
    if code in _AUTHENTICATION_CODES or decline_code in _AUTHENTICATION_CODES:
        return ChargeStatus.REQUIRES_ACTION
    return ChargeStatus.DECLINED


_INTENT_STATUSES = {
    "succeeded": ChargeStatus.SUCCEEDED,
    "processing": ChargeStatus.PROCESSING,
    "requires_action": ChargeStatus.REQUIRES_ACTION,
    "requires_payment_method": ChargeStatus.DECLINED,
}


def payment_intent_create_off_session(
    *,
    customer: str,
    payment_method: str,
    amount_minor: int,
    currency: str,
    metadata: dict[str, str],
    idempotency_key: str,
    description: str = "",
) -> ChargeResult:
    """Charge a saved card with the customer away (confirm=true, off_session=true).

    A card's refusal is an answer, not an exception: Stripe's 402 CardError becomes DECLINED,
    or REQUIRES_ACTION for `authentication_required` (the PaymentIntent id comes in the error).
    Connection errors, 429 and 5xx raise StripeUnavailable: send again with the same
    idempotency key (Stripe then answers what it answered the first time, charging once).
    """
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "customer": customer,
        "payment_method": payment_method,
        "payment_method_types": ["card"],
        "off_session": True,
        "confirm": True,
        "metadata": metadata,
    }
    if description:
        params["description"] = description[:500]
    try:
        intent = _client().v1.payment_intents.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    except stripe.CardError as exc:
        body = exc.json_body if isinstance(exc.json_body, dict) else {}
        raw = body.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        code = str(error.get("code") or exc.code or "card_declined")[:100]
        decline_code = str(error.get("decline_code") or "")[:100]
        logger.info("off-session charge %s refused: %s %s", idempotency_key, code, decline_code)
        return ChargeResult(
            status=charge_status_for(code=code, decline_code=decline_code),
            payment_intent_id=_id(error.get("payment_intent")),
            error_code=code,
            decline_code=decline_code,
            message=str(error.get("message") or "Your card was declined.")[:500],
        )
    except stripe.StripeError as exc:
        raise _stripe_error(exc, what="charge a saved card") from exc
    status = _attr(intent, "status") or ""
    result = _INTENT_STATUSES.get(status, ChargeStatus.ERROR)
    last_error = _attr(intent, "last_payment_error")
    code = str(_attr(last_error, "code") or "") if last_error else ""
    return ChargeResult(
        status=result,
        payment_intent_id=intent.id,
        error_code=code or ("" if result != ChargeStatus.ERROR else f"status_{status}"[:100]),
        decline_code=str(_attr(last_error, "decline_code") or "") if last_error else "",
        message=str(_attr(last_error, "message") or "")[:500] if last_error else "",
    )


@dataclass(frozen=True)
class PaymentIntentResult:
    """A PaymentIntent as read back from Stripe (for a charge whose webhook never came)."""

    id: str
    status: str
    amount: int | None
    amount_received: int | None
    currency: str
    customer_id: str
    metadata: dict[str, str]
    error_code: str = ""
    decline_code: str = ""
    error_message: str = ""


def payment_intent_retrieve(*, payment_intent_id: str) -> PaymentIntentResult:
    try:
        intent = _client().v1.payment_intents.retrieve(payment_intent_id)
    except stripe.StripeError as exc:
        raise _stripe_error(exc, what="read a payment") from exc
    raw_metadata = _attr(intent, "metadata")
    if raw_metadata is not None and hasattr(raw_metadata, "to_dict"):
        raw_metadata = raw_metadata.to_dict()
    metadata = {
        str(key): value
        for key, value in (raw_metadata if isinstance(raw_metadata, dict) else {}).items()
        if isinstance(value, str)
    }
    amount, received = _attr(intent, "amount"), _attr(intent, "amount_received")
    last_error = _attr(intent, "last_payment_error")
    return PaymentIntentResult(
        id=intent.id,
        status=str(_attr(intent, "status") or ""),
        amount=amount if isinstance(amount, int) else None,
        amount_received=received if isinstance(received, int) else None,
        currency=str(_attr(intent, "currency") or ""),
        customer_id=_id(_attr(intent, "customer")),
        metadata=metadata,
        error_code=str(_attr(last_error, "code") or "")[:100] if last_error else "",
        decline_code=str(_attr(last_error, "decline_code") or "")[:100] if last_error else "",
        error_message=str(_attr(last_error, "message") or "")[:500] if last_error else "",
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
