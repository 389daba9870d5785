"""Billing's fleet jobs, run by `manage.py run_job NAME` and by beat (common.jobs)."""

from billing.services.dunning import dunning_run
from billing.services.renewals import renewals_run


def renewals_job(*, dry_run: bool) -> dict[str, int]:
    """Renewal invoices for every live server due within BILLING_RENEWAL_INVOICE_DAYS."""
    return renewals_run(dry_run=dry_run)


def dunning_job(*, dry_run: bool) -> dict[str, int]:
    """Reminders, overdue notices, suspension warnings; suspension, termination and
    unsuspension requested as panel operations (the drain task runs them)."""
    return dunning_run(dry_run=dry_run)
