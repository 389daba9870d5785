"""Celery tasks of billing. Thin: each calls one service. Services queue them only through
billing.enqueue (this module imports the services).
"""

from celery import shared_task

from billing.services.autocharge import autocharge_attempt_send, payment_method_saved
from billing.services.checkout_expiry import checkout_sessions_expire
from billing.services.dunning import dunning_run
from billing.services.maintenance import orders_cancel_stale_unpaid
from billing.services.renewal_credit import renewal_invoices_issue_with_credit
from billing.stripe_client import StripeUnavailable
from provisioning.tasks import drain_panel_operations


@shared_task(name="billing.cancel_stale_unpaid_orders")
def cancel_stale_unpaid_orders() -> int:
    return orders_cancel_stale_unpaid()


@shared_task(
    name="billing.expire_checkout_sessions",
    autoretry_for=(StripeUnavailable,),
    retry_backoff=True,
    max_retries=8,
)
def expire_checkout_sessions(invoice_id: int) -> int:
    return checkout_sessions_expire(invoice_id=invoice_id)


@shared_task(name="billing.issue_renewal_invoices")
def issue_renewal_invoices() -> int:
    """Kept for messages queued by earlier versions; beat runs `common.run_job("renewals")`."""
    return renewal_invoices_issue_with_credit()


@shared_task(name="billing.dunning")
def dunning() -> dict[str, int]:
    """Kept for messages queued by earlier versions; beat runs `common.run_job("dunning")`.
    The operations it requests are worked off by the drain (enqueued after commit)."""
    counts = dunning_run()
    drain_panel_operations.delay()  # also retries operations whose backoff has passed
    return counts


@shared_task(
    name="billing.autocharge_send",
    autoretry_for=(StripeUnavailable,),
    retry_backoff=True,
    max_retries=5,
)
def autocharge_send(attempt_id: int) -> str:
    """Send one off-session charge (same idempotency key on every retry)."""
    return autocharge_attempt_send(attempt_id=attempt_id)


@shared_task(
    name="billing.save_payment_method",
    autoretry_for=(StripeUnavailable,),
    retry_backoff=True,
    max_retries=8,
)
def save_payment_method(
    stripe_customer_id: str, setup_intent_id: str, payment_method_id: str = ""
) -> int | None:
    method = payment_method_saved(
        stripe_customer_id=stripe_customer_id,
        setup_intent_id=setup_intent_id,
        payment_method_id=payment_method_id,
    )
    return method.pk if method else None
