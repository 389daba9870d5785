"""Billing's fleet jobs, run by `manage.py run_job NAME` and by beat (common.jobs)."""

from django.conf import settings

from billing.services.autocharge import autocharge_run
from billing.services.cancellations import cancellations_run
from billing.services.dunning import dunning_run
from billing.services.plan_changes import plan_changes_apply_due
from billing.services.renewal_credit import renewals_run_with_credit
from billing.services.stripe_payments import autocharge_processing_recheck


def renewals_job(*, dry_run: bool) -> dict[str, int]:
    """Renewal invoices for every live server due within BILLING_RENEWAL_INVOICE_DAYS, with
    account credit spent first (fully covered invoices are paid at once)."""
    return renewals_run_with_credit(dry_run=dry_run)


def dunning_job(*, dry_run: bool) -> dict[str, int]:
    """Reminders, overdue notices, suspension warnings; suspension, termination and
    unsuspension requested as panel operations (the drain task runs them)."""
    return dunning_run(dry_run=dry_run)


def cancellations_job(*, dry_run: bool) -> dict[str, int]:
    """Servers whose cancellation is due: termination requested as panel operations (the drain
    checks each one again and runs it)."""
    return cancellations_run(dry_run=dry_run)


def autocharge_job(*, dry_run: bool) -> dict[str, int]:
    """Off-session charges of unpaid renewal invoices to the customers' default saved cards
    (BILLING_AUTOCHARGE_DAYS_BEFORE_DUE), retried per BILLING_AUTOCHARGE_RETRY_DAYS; charges
    left processing without a webhook are read back from Stripe first."""
    counts = {"rechecked": 0, "recheck_failed": 0}
    if settings.STRIPE_SECRET_KEY and not dry_run:
        counts = autocharge_processing_recheck()
    return autocharge_run(dry_run=dry_run) | counts


def plan_changes_job(*, dry_run: bool) -> dict[str, int]:
    """Plan changes that are due (downgrades scheduled for the end of the period, paid upgrades
    whose panel operation could not be queued): requested as panel operations, in batches."""
    return plan_changes_apply_due(dry_run=dry_run)
