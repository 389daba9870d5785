from celery import shared_task

from billing.services.maintenance import orders_cancel_stale_unpaid


@shared_task(name="billing.cancel_stale_unpaid_orders")
def cancel_stale_unpaid_orders() -> int:
    return orders_cancel_stale_unpaid()
