from collections.abc import Callable

from celery import shared_task

from billing.services.checkout_expiry import checkout_sessions_expire
from billing.services.maintenance import orders_cancel_stale_unpaid
from billing.services.renewals import (
    dunning_panel_problem,
    dunning_run,
    paid_server_unsuspend,
    renewal_invoices_issue,
    unpaid_server_suspend,
    unpaid_server_terminate,
)
from billing.stripe_client import StripeUnavailable
from provisioning.operations import PanelOperationFailed, PanelServerMissing


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
    return renewal_invoices_issue()


@shared_task(name="billing.dunning")
def dunning() -> dict[str, int]:
    """Reminders and overdue notices; one panel task per server to suspend or terminate."""
    work = dunning_run()
    for deployment_id in work["suspend"]:
        suspend_unpaid.delay(deployment_id)
    for deployment_id in work["terminate"]:
        terminate_unpaid.delay(deployment_id)
    for deployment_id in work["unsuspend"]:
        unsuspend_paid.delay(deployment_id)
    return {key: len(ids) for key, ids in work.items()}


# Panel operations: retried (with backoff) while the panel is unreachable; a server no longer in
# the expected state (paid meanwhile, already done by a concurrent run) is left alone.
_PANEL_TASK = {"autoretry_for": (PanelOperationFailed,), "retry_backoff": True, "max_retries": 6}


def _or_alert(operation: str, deployment_id: int, run: Callable[[], str]) -> str:
    """Run a dunning panel operation; a server missing on the panel goes to staff, once."""
    try:
        return run()
    except PanelServerMissing as exc:
        dunning_panel_problem(deployment_id=deployment_id, operation=operation, error=exc.message)
        return "server missing on the panel; staff alerted"


@shared_task(name="billing.suspend_unpaid", **_PANEL_TASK)
def suspend_unpaid(deployment_id: int) -> str:
    return _or_alert(
        "suspend", deployment_id, lambda: unpaid_server_suspend(deployment_id=deployment_id)
    )


@shared_task(name="billing.terminate_unpaid", **_PANEL_TASK)
def terminate_unpaid(deployment_id: int) -> str:
    return _or_alert(
        "terminate", deployment_id, lambda: unpaid_server_terminate(deployment_id=deployment_id)
    )


@shared_task(name="billing.unsuspend_paid", **_PANEL_TASK)
def unsuspend_paid(deployment_id: int) -> str:
    return _or_alert(
        "unsuspend", deployment_id, lambda: paid_server_unsuspend(deployment_id=deployment_id)
    )
