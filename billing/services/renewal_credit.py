"""Renewal runs that spend account credit, and pay what it covers in full.

The renewal job (billing.services.renewals) writes each batch's invoices and spends the credit
of the customers who have some; an invoice credit covers in full is paid at 0.00 through
billing.services.payments.invoice_mark_paid in the batch's transaction, exactly like a
zero-total new order, so its server is extended (renewal_paid) and the customer gets the usual
payment message. Payments imports renewals (renewal_paid), so renewals cannot import payments:
this module sits above both and hands renewals_run the settling step. The jobs (billing.jobs,
billing.tasks) run renewals through here; renewals_run without it spends no credit.
"""

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from billing.models import PaymentProvider
from billing.services.payments import invoice_mark_paid
from billing.services.renewals import renewals_run
from common.actors import Actor


def renewal_invoices_settle_covered(invoices: Sequence[tuple[int, str]]) -> None:
    """Pay, at 0.00, renewal invoices ((id, currency) pairs) account credit covered in full
    (inside the batch's transaction; the rare invoices of customers with credit)."""
    actor = Actor.system("credit")
    for invoice_id, currency in invoices:
        invoice_mark_paid(
            invoice_id=invoice_id,
            provider=PaymentProvider.MANUAL,
            amount=Decimal("0"),
            currency=currency,
            reference="",
            actor=actor,
            note="Paid in full by account credit",
        )


def renewals_run_with_credit(
    *, today: dt.date | None = None, dry_run: bool = False, batch_size: int | None = None
) -> dict[str, int]:
    """The renewal job (renewals_run) with account credit spent and covered invoices paid."""
    return renewals_run(
        today=today,
        dry_run=dry_run,
        batch_size=batch_size,
        settle_covered=renewal_invoices_settle_covered,
    )


def renewal_invoices_issue_with_credit(*, today: dt.date | None = None) -> int:
    """Issue every due renewal invoice now, spending credit; returns how many were issued."""
    return renewals_run_with_credit(today=today)["invoices"]
