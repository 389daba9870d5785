"""The one place billing's services queue billing's own Celery tasks.

billing.tasks are thin callers of the services, so the services cannot import billing.tasks at
module level (a circle); they call these functions instead, which import it when they run. Each
queues after the caller's transaction commits (`delay_on_commit`): the task never runs before the
rows it needs exist, nor for a transaction that rolled back.
"""


def checkout_sessions_expire_on_commit(*, invoice_id: int) -> None:
    """Close the invoice's open Stripe Checkout pages once this transaction commits."""
    from billing.tasks import expire_checkout_sessions  # (billing.tasks imports the services)

    expire_checkout_sessions.delay_on_commit(invoice_id)


def autocharge_attempts_send_on_commit(*, attempt_ids: list[int]) -> None:
    """Send each off-session charge once this transaction (which wrote its row) commits: one
    task per charge, as a Stripe call is slow external work."""
    from billing.tasks import autocharge_send

    for attempt_id in attempt_ids:
        autocharge_send.delay_on_commit(attempt_id)


def payment_method_save_on_commit(
    *, stripe_customer_id: str, setup_intent_id: str, payment_method_id: str
) -> None:
    """Read a newly saved card from Stripe and record it, once the webhook's row commits."""
    from billing.tasks import save_payment_method

    save_payment_method.delay_on_commit(stripe_customer_id, setup_intent_id, payment_method_id)
