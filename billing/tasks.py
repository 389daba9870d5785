"""Celery tasks of billing. Thin: each calls one service. Services queue them only through
billing.enqueue (this module imports the services).
"""

from celery import shared_task

from billing.services.checkout_expiry import checkout_sessions_expire
from billing.services.dunning import dunning_run
from billing.services.maintenance import orders_cancel_stale_unpaid
from billing.services.renewals import renewal_invoices_issue
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
    return renewal_invoices_issue()


@shared_task(name="billing.dunning")
def dunning() -> dict[str, int]:
    """Kept for messages queued by earlier versions; beat runs `common.run_job("dunning")`.
    The operations it requests are worked off by the drain (enqueued after commit)."""
    counts = dunning_run()
    drain_panel_operations.delay()  # also retries operations whose backoff has passed
    return counts
