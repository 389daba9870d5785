"""Closing the Stripe Checkout pages of an invoice that can no longer be paid."""

import logging

from billing import stripe_client
from billing.enqueue import checkout_sessions_expire_on_commit
from billing.models import CheckoutSession, CheckoutSessionStatus

logger = logging.getLogger(__name__)


def checkout_sessions_expire_later(*, invoice_id: int) -> None:
    """Queue the expiry after commit (it calls Stripe; never inside a transaction)."""
    if CheckoutSession.objects.filter(
        invoice_id=invoice_id, status=CheckoutSessionStatus.OPEN
    ).exists():
        checkout_sessions_expire_on_commit(invoice_id=invoice_id)


def checkout_sessions_expire(*, invoice_id: int) -> int:
    """Expire the invoice's open sessions at Stripe. Idempotent; returns how many closed.

    A payment that still gets through (it was mid-flight) is stored as rejected and staff are
    alerted to refund it, by the webhook.
    """
    closed = 0
    for session in CheckoutSession.objects.filter(
        invoice_id=invoice_id, status=CheckoutSessionStatus.OPEN
    ):
        stripe_client.checkout_session_expire(session_id=session.stripe_session_id)
        updated = CheckoutSession.objects.filter(
            pk=session.pk, status=CheckoutSessionStatus.OPEN
        ).update(status=CheckoutSessionStatus.EXPIRED)
        closed += updated
    if closed:
        logger.info("expired %s checkout session(s) of invoice %s", closed, invoice_id)
    return closed
