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
