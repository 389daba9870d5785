"""Stripe Checkout: starting a session for an invoice, and handling its webhooks.

Events arrive duplicated and out of order. Each event id is stored once (unique); the first
delivery is processed in the same transaction that stores it, later ones do nothing.
"""

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import stripe_client
from billing.errors import BillingErrorCode
from billing.models import (
    CheckoutSession,
    CheckoutSessionStatus,
    Invoice,
    InvoiceStatus,
    PaymentProvider,
    StripeEvent,
    StripeEventStatus,
)
from billing.notify import notify_payment_review
from billing.services.autocharge import (
    autocharge_attempt_match,
    autocharge_intent_failed,
    autocharge_intent_succeeded,
    autocharge_processing_stale,
    payment_method_save_request,
)
from billing.services.payments import invoice_mark_paid
from billing.services.renewals import fleet_batch_size
from common.actors import Actor
from common.errors import ConflictError, NotFoundError
from common.money import from_minor_units, to_minor_units

logger = logging.getLogger(__name__)


def checkout_session_start(
    *, invoice_id: int, customer: User, success_url: str, cancel_url: str
) -> CheckoutSession:
    """An open Checkout session for the customer's unpaid invoice (reused while still open)."""
    invoice = Invoice.objects.filter(pk=invoice_id, customer=customer).first()
    if invoice is None:
        raise NotFoundError(_("No such invoice."))
    if invoice.status != InvoiceStatus.UNPAID:
        raise ConflictError(
            _("Invoice %(number)s is %(status)s.")
            % {"number": invoice.number, "status": invoice.get_status_display().lower()},
            code=BillingErrorCode.INVOICE_NOT_PAYABLE,
        )
    amount_minor = to_minor_units(invoice.total, invoice.currency)
    now = timezone.now()
    reusable = (
        CheckoutSession.objects.filter(
            invoice=invoice,
            status=CheckoutSessionStatus.OPEN,
            amount_minor=amount_minor,
            currency=invoice.currency,
            expires_at__gt=now + dt.timedelta(minutes=5),
        )
        .exclude(url="")
        .first()
    )
    if reusable is not None:
        return reusable
    attempt = CheckoutSession.objects.filter(invoice=invoice).count() + 1
    # The HTTP call runs outside any transaction; Stripe's idempotency key makes a retried
    # attempt return the same session.
    result = stripe_client.checkout_session_create(
        invoice_id=invoice.pk,
        invoice_number=invoice.number,
        amount_minor=amount_minor,
        currency=invoice.currency,
        description=", ".join(line.description for line in invoice.lines.all())[:500],
        customer_email=getattr(customer, "email", ""),
        success_url=success_url,
        cancel_url=cancel_url,
        idempotency_key=f"invoice-{invoice.pk}-checkout-{attempt}",
    )
    session, _created = CheckoutSession.objects.get_or_create(
        stripe_session_id=result.id,
        defaults={
            "invoice": invoice,
            "url": result.url,
            "amount_minor": result.amount_total,
            "currency": result.currency,
            "expires_at": result.expires_at,
        },
    )
    return session


def stripe_webhook_receive(*, payload: bytes, signature_header: str) -> StripeEvent:
    """Verify, store once, and process a Stripe webhook. Raises WebhookRejected if forged."""
    event = stripe_client.webhook_event_verify(payload=payload, signature_header=signature_header)
    event_id, event_type = str(event["id"]), str(event["type"])
    created = event.get("created")
    try:
        with transaction.atomic():
            row = StripeEvent.objects.create(
                event_id=event_id,
                type=event_type,
                livemode=bool(event.get("livemode")),
                stripe_created_at=dt.datetime.fromtimestamp(created, tz=dt.UTC)
                if isinstance(created, int)
                else None,
                status=StripeEventStatus.PROCESSED,
            )
            obj = _event_object(event)
            summary = _summary(obj)
            outcome = _dispatch(event_type, obj, summary)
            row.status, row.message = outcome.status, outcome.message
            row.invoice, row.summary = outcome.invoice, summary
            row.save(update_fields=["status", "message", "invoice", "summary"])
            if outcome.status == StripeEventStatus.REJECTED:
                _staff_review_request(event_id, outcome, summary)
    except IntegrityError:
        # Already stored: a duplicate delivery. Nothing to do.
        existing = StripeEvent.objects.get(event_id=event_id)
        logger.info("stripe event %s (%s) received again; ignored", event_id, event_type)
        return existing
    log = logger.error if row.status == StripeEventStatus.REJECTED else logger.info
    log("stripe event %s (%s): %s %s", event_id, event_type, row.status, row.message)
    return row


@dataclass(frozen=True)
class EventOutcome:
    """What handling one Stripe event did: its StripeEvent row's status and message, and the
    invoice it was about (if any)."""

    status: StripeEventStatus
    message: str
    invoice: Invoice | None = None


# Stripe object ids (cs_..., pi_...): ASCII letters, digits and underscores, at most 255.
_STRIPE_ID = re.compile(r"[A-Za-z0-9_]{1,255}")
_SUMMARY_KEYS = (
    "id",
    "amount_total",
    "amount",
    "currency",
    "payment_status",
    "status",
    "payment_intent",
    "mode",
)
# The Checkout events that may carry a payment, and the payment statuses that mean settled.
_PAYMENT_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
_SETTLED = {"paid", "no_payment_required"}


def _stripe_id(value: Any) -> str:
    """The id if `value` looks like a Stripe object id, else "" (an expanded object gives its
    id). A signed event can still carry odd values; they must not reach a query or a column."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and _STRIPE_ID.fullmatch(value) else ""


def _summary_value(value: Any) -> Any:
    """A JSON scalar safe to store (jsonb refuses NUL in strings); nested values by type."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value.replace("\x00", "")[:255]
    return f"<{type(value).__name__}>"


def _summary(obj: dict[str, Any]) -> dict[str, Any]:
    """What the StripeEvent row keeps of the event's object (never the whole payload)."""
    return {key: _summary_value(obj.get(key)) for key in _SUMMARY_KEYS if key in obj}


def _event_object(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def _invoice_for(obj: dict[str, Any]) -> Invoice | None:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    raw = metadata.get("invoice_id") or obj.get("client_reference_id")
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    # ASCII digits only: str.isdigit() accepts "²" and "٣", which int() refuses or misreads.
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return Invoice.objects.filter(pk=int(raw)).first()
    session_id = _stripe_id(obj.get("id"))
    session = CheckoutSession.objects.filter(stripe_session_id=session_id).first()
    return session.invoice if session and session_id else None


def _dispatch(event_type: str, obj: dict[str, Any], summary: dict[str, Any]) -> EventOutcome:
    if event_type == "checkout.session.completed" and obj.get("mode") == "setup":
        return _card_setup_succeeded(
            setup_intent_id=_stripe_id(obj.get("setup_intent")), customer=obj.get("customer")
        )
    if event_type == "setup_intent.succeeded":
        return _card_setup_succeeded(
            setup_intent_id=_stripe_id(obj.get("id")),
            customer=obj.get("customer"),
            payment_method_id=_stripe_id(obj.get("payment_method")),
        )
    if event_type == "payment_intent.succeeded":
        return _intent_succeeded(obj, summary)
    if event_type == "payment_intent.payment_failed":
        return _intent_failed(obj)
    if event_type == "checkout.session.expired":
        return _session_expired(obj)
    if event_type == "checkout.session.async_payment_failed":
        return EventOutcome(StripeEventStatus.IGNORED, "Delayed payment failed", _invoice_for(obj))
    if event_type in _PAYMENT_EVENTS:
        return _session_paid(obj, summary)
    return EventOutcome(StripeEventStatus.IGNORED, f"Event type {event_type} is not handled")


def _card_setup_succeeded(
    *, setup_intent_id: str, customer: Any, payment_method_id: str = ""
) -> EventOutcome:
    """A card was saved at Stripe (setup-mode Checkout, or its SetupIntent): record it."""
    stripe_customer_id = _stripe_id(customer)
    if not setup_intent_id or not stripe_customer_id:
        return EventOutcome(StripeEventStatus.IGNORED, "Setup without a customer or intent")
    if not payment_method_save_request(
        stripe_customer_id=stripe_customer_id,
        setup_intent_id=setup_intent_id,
        payment_method_id=payment_method_id,
    ):
        return EventOutcome(StripeEventStatus.IGNORED, "Setup of a customer that is not ours")
    return EventOutcome(StripeEventStatus.PROCESSED, "Saved card queued for recording")


def _autocharge_metadata(obj: dict[str, Any]) -> tuple[int | None, bool]:
    """(attempt number, is an auto-charge) from a PaymentIntent's metadata. Checkout's own
    PaymentIntents carry no attempt: their session's events decide those payments."""
    metadata = obj.get("metadata")
    raw = metadata.get("attempt") if isinstance(metadata, dict) else None
    if not isinstance(raw, str):
        return None, False
    if raw.isascii() and raw.isdigit() and len(raw) <= 4:
        return int(raw), True
    return None, True


def _intent_succeeded(obj: dict[str, Any], summary: dict[str, Any]) -> EventOutcome:
    """An off-session charge took the money: the attempt succeeded, the invoice is paid once
    (the unique provider+reference payment makes a second event a duplicate). Only for a
    PaymentIntent of one of our attempts, charged to the invoice's customer: metadata naming
    an invoice is not enough (staff review money that matches no attempt of ours)."""
    attempt_number, is_autocharge = _autocharge_metadata(obj)
    if not is_autocharge:
        return EventOutcome(
            StripeEventStatus.IGNORED, "Checkout payment; its session's event decides"
        )
    invoice = _invoice_for(obj)
    if invoice is None:
        return EventOutcome(StripeEventStatus.REJECTED, "No invoice matches this charge")
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    reference = _stripe_id(obj.get("id"))
    attempt_id = autocharge_attempt_match(
        payment_intent_id=reference,
        invoice_id=invoice.pk,
        attempt_number=attempt_number,
        stripe_customer_id=_stripe_id(obj.get("customer")),
    )
    if not attempt_id:
        return EventOutcome(
            StripeEventStatus.REJECTED,
            f"No automatic charge of ours matches this payment ({reference or 'no id'}) for "
            f"invoice {invoice.number} and its customer; it was not applied. Review and refund.",
            invoice,
        )
    autocharge_intent_succeeded(attempt_id=attempt_id, payment_intent_id=reference)
    amount = obj.get("amount_received", obj.get("amount"))
    currency = obj["currency"].upper() if isinstance(obj.get("currency"), str) else ""
    if (
        not isinstance(amount, int)
        or currency != invoice.currency
        or amount != to_minor_units(invoice.total, invoice.currency)
    ):
        return EventOutcome(
            StripeEventStatus.REJECTED,
            f"Amount mismatch: Stripe charged {summary.get('amount')} "
            f"{summary.get('currency')} (minor units), invoice {invoice.number} is "
            f"{invoice.total} {invoice.currency}. Review and refund.",
            invoice,
        )
    if invoice.status != InvoiceStatus.UNPAID:
        return _not_payable(invoice, reference)
    return _payment_apply(invoice, amount=amount, currency=currency, reference=reference)


def _intent_failed(obj: dict[str, Any]) -> EventOutcome:
    """An off-session charge failed: declined (retried per schedule) or the bank wants the
    customer (SCA); the customer is told once, whichever of this and the synchronous answer
    came first. Only for a PaymentIntent of one of our attempts (autocharge_attempt_match)."""
    attempt_number, is_autocharge = _autocharge_metadata(obj)
    invoice = _invoice_for(obj)
    if not is_autocharge or invoice is None:
        return EventOutcome(StripeEventStatus.IGNORED, "Not an automatic payment", invoice)
    reference = _stripe_id(obj.get("id"))
    attempt_id = autocharge_attempt_match(
        payment_intent_id=reference,
        invoice_id=invoice.pk,
        attempt_number=attempt_number,
        stripe_customer_id=_stripe_id(obj.get("customer")),
    )
    if not attempt_id:
        return EventOutcome(
            StripeEventStatus.IGNORED, "No automatic charge of ours matches it", invoice
        )
    error = obj.get("last_payment_error")
    error = error if isinstance(error, dict) else {}

    def text(key: str) -> str:
        value = error.get(key)
        return value.replace("\x00", "") if isinstance(value, str) else ""

    attempt = autocharge_intent_failed(
        attempt_id=attempt_id,
        payment_intent_id=reference,
        code=text("code"),
        decline_code=text("decline_code"),
        message=text("message"),
    )
    if attempt is None:
        return EventOutcome(StripeEventStatus.IGNORED, "Charge failure already recorded", invoice)
    return EventOutcome(
        StripeEventStatus.PROCESSED,
        f"Auto-charge {attempt.attempt_number} of invoice {invoice.number}: {attempt.status}",
        invoice,
    )


def autocharge_processing_recheck(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Charges Stripe answered "processing" whose webhook never came: read each PaymentIntent
    back (no transaction open during the call) and apply what it says exactly as its webhook
    would (succeeded: the invoice is paid once; failed: declined or needs the customer, told
    once); still processing: read again after PROCESSING_RECHECK_AFTER. Stripe unreachable
    ends this run's rechecks (the rows wait for the next one)."""
    now = now or timezone.now()
    counts = {"rechecked": 0, "recheck_failed": 0}
    while True:
        rows = autocharge_processing_stale(now=now, limit=fleet_batch_size())
        if not rows:
            return counts
        for _attempt_id, payment_intent_id in rows:
            try:
                intent = stripe_client.payment_intent_retrieve(payment_intent_id=payment_intent_id)
            except stripe_client.StripeUnavailable:
                logger.warning("stripe unreachable; re-reading processing charges stopped")
                counts["recheck_failed"] += 1
                return counts
            except stripe_client.StripeRequestRejected as exc:
                logger.warning("processing charge %s not read: %s", payment_intent_id, exc.code)
                counts["recheck_failed"] += 1
                continue
            counts["rechecked"] += 1
            _intent_read_back_apply(intent)


def _intent_read_back_apply(intent: stripe_client.PaymentIntentResult) -> None:
    obj: dict[str, Any] = {
        "id": intent.id,
        "object": "payment_intent",
        "status": intent.status,
        "amount": intent.amount,
        "currency": intent.currency,
        "customer": intent.customer_id,
        "metadata": intent.metadata,
    }
    if intent.amount_received is not None:
        obj["amount_received"] = intent.amount_received
    code = intent.error_code
    if intent.status == "requires_action" and not code:
        code = "authentication_required"
    obj["last_payment_error"] = {
        "code": code,
        "decline_code": intent.decline_code,
        "message": intent.error_message,
    }
    summary = _summary(obj)
    with transaction.atomic():
        if intent.status == "succeeded":
            outcome = _intent_succeeded(obj, summary)
        elif intent.status in ("requires_payment_method", "requires_action", "canceled"):
            outcome = _intent_failed(obj)
        else:
            logger.info("charge %s still %s at Stripe", intent.id, intent.status)
            return
        if outcome.status == StripeEventStatus.REJECTED:
            _staff_review_request(f"autocharge-recheck-{intent.id}", outcome, summary)
    log = logger.error if outcome.status == StripeEventStatus.REJECTED else logger.info
    log(
        "charge %s read back (%s): %s %s", intent.id, intent.status, outcome.status, outcome.message
    )


def _session_expired(obj: dict[str, Any]) -> EventOutcome:
    updated = CheckoutSession.objects.filter(
        stripe_session_id=_stripe_id(obj.get("id")), status=CheckoutSessionStatus.OPEN
    ).update(status=CheckoutSessionStatus.EXPIRED)
    invoice = _invoice_for(obj)
    if updated:
        return EventOutcome(StripeEventStatus.PROCESSED, "Checkout session expired", invoice)
    return EventOutcome(StripeEventStatus.IGNORED, "Session not open; nothing to expire", invoice)


def _session_paid(obj: dict[str, Any], summary: dict[str, Any]) -> EventOutcome:
    """A Checkout session that may carry a payment: apply it to its invoice once, or say why
    not (rejected: staff review it and refund)."""
    invoice = _invoice_for(obj)
    if invoice is None:
        return EventOutcome(StripeEventStatus.REJECTED, "No invoice matches this session")
    # Locked until this event is stored: a second event for the same payment (Stripe sends
    # completed and async_payment_succeeded, possibly at the same moment) waits here and then
    # sees this one's payment, instead of judging from a stale read and asking for a refund.
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    session_id = _stripe_id(obj.get("id"))
    if session_id:
        CheckoutSession.objects.filter(stripe_session_id=session_id).update(
            status=CheckoutSessionStatus.COMPLETE
        )
    if obj.get("payment_status") not in _SETTLED:
        return EventOutcome(
            StripeEventStatus.IGNORED, "Payment not settled yet; waiting for async result", invoice
        )
    amount = obj.get("amount_total")
    currency = obj["currency"].upper() if isinstance(obj.get("currency"), str) else ""
    if (
        not isinstance(amount, int)
        or currency != invoice.currency
        or amount != to_minor_units(invoice.total, invoice.currency)
    ):
        return EventOutcome(
            StripeEventStatus.REJECTED,
            f"Amount mismatch: Stripe charged {summary.get('amount_total')} "
            f"{summary.get('currency')} (minor units), invoice {invoice.number} is "
            f"{invoice.total} {invoice.currency}. Review and refund.",
            invoice,
        )
    reference = _stripe_id(obj.get("payment_intent")) or session_id
    if invoice.status != InvoiceStatus.UNPAID:
        return _not_payable(invoice, reference)
    return _payment_apply(invoice, amount=amount, currency=currency, reference=reference)


def _not_payable(invoice: Invoice, reference: str) -> EventOutcome:
    """The invoice is no longer unpaid: this payment paid it already, or it must go back."""
    if _already_applied(invoice, reference):
        return EventOutcome(StripeEventStatus.IGNORED, "Already applied", invoice)
    return EventOutcome(
        StripeEventStatus.REJECTED,
        f"Invoice {invoice.number} is {invoice.status}; this Stripe payment "
        f"({reference}) was not applied and must be refunded.",
        invoice,
    )


def _payment_apply(invoice: Invoice, *, amount: int, currency: str, reference: str) -> EventOutcome:
    try:
        invoice_mark_paid(
            invoice_id=invoice.pk,
            provider=PaymentProvider.STRIPE,
            amount=from_minor_units(amount, currency),
            currency=currency,
            reference=reference,
            actor=Actor.provider("stripe", (reference or "checkout")[:150]),
        )
    except ConflictError as exc:
        # The unique provider+reference constraint is the last word if anything got past the
        # lock: the same PaymentIntent applied once is a duplicate, not money to refund.
        if _already_applied(invoice, reference):
            return EventOutcome(StripeEventStatus.IGNORED, "Already applied", invoice)
        return EventOutcome(StripeEventStatus.REJECTED, exc.message, invoice)
    return EventOutcome(StripeEventStatus.PROCESSED, f"Invoice {invoice.number} paid", invoice)


def _already_applied(invoice: Invoice, reference: str) -> bool:
    """This Stripe payment is the one that paid the invoice (read after the invoice lock)."""
    return bool(reference) and (
        Invoice.objects.filter(pk=invoice.pk, status=InvoiceStatus.PAID).exists()
        and invoice.payments.filter(provider=PaymentProvider.STRIPE, reference=reference).exists()
    )


def _staff_review_request(event_id: str, outcome: EventOutcome, summary: dict[str, Any]) -> None:
    """Money Stripe took that was not applied: staff review it (once per event)."""
    notify_payment_review(
        provider=PaymentProvider.STRIPE,
        reference=str(summary.get("payment_intent") or summary.get("id") or event_id),
        reason=outcome.message,
        invoice=outcome.invoice,
        # event_key holds 200 characters; Stripe ids may have 255.
        event_key=f"payment_review:{event_id}"
        if len(event_id) <= 150
        else f"payment_review:sha256:{hashlib.sha256(event_id.encode()).hexdigest()}",
    )
