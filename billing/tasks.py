from celery import shared_task

from billing.services.checkout_expiry import checkout_sessions_expire
from billing.services.maintenance import orders_cancel_stale_unpaid
from billing.stripe_client import StripeUnavailable


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
