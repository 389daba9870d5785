"""Issue 12, item 6: the paid period starts when the server becomes active, not at payment.

Through the real saga against the panel simulator, on dates set with time-machine: an order paid
on day D whose run fails and succeeds on D+3 is paid through D+3 + one month (the failed run does
not eat the customer's days), renewals anchor on the activation day, and a later activation
signal for the same order moves nothing.
"""

import datetime as dt

import pytest
import time_machine

from billing.models import InvoiceKind, OrderStatus
from billing.services.payments import payment_record_manual
from billing.services.provisioning_events import OrderProvisioningListener
from billing.services.renewal_credit import renewals_run_with_credit
from common.actors import Actor
from provisioning.services import provisioning_retry
from servers.models import Deployment, DeploymentStatus

UTC = dt.UTC
PAID_ON = dt.datetime(2027, 1, 29, 10, 0, tzinfo=UTC)  # payment day + 1 month would be Feb 28
ACTIVE_ON = dt.datetime(2027, 2, 1, 9, 30, tzinfo=UTC)  # D+3


@pytest.fixture(autouse=True)
def _utc_billing(settings):
    settings.BILLING_TIME_ZONE = "UTC"


def test_a_failed_run_does_not_eat_the_paid_days(saga, place_order, staff):
    with time_machine.travel(PAID_ON, tick=True):
        order = place_order()
        saga.panel.eggs[1].fail_install = True
        payment_record_manual(
            invoice_id=order.invoices.get().pk, reference="BCA-9", actor=Actor.staff(staff)
        )
        order.refresh_from_db()
        deployment = Deployment.objects.get(pk=order.deployment_id)
    assert order.status == OrderStatus.CONFIRMED  # the run failed
    assert deployment.status != DeploymentStatus.ACTIVE
    assert deployment.next_due_date == dt.date(2027, 2, 28)  # provisional: from the payment

    with time_machine.travel(ACTIVE_ON, tick=True):
        saga.panel.eggs[1].fail_install = False
        provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
    order.refresh_from_db()
    deployment.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert deployment.status == DeploymentStatus.ACTIVE
    assert deployment.next_due_date == dt.date(2027, 3, 1)  # D+3 + 1 month
    assert (
        deployment.events.filter(
            reason__startswith="Paid period starts when the server becomes active"
        ).count()
        == 1
    )

    # Another "active" signal later (a re-provisioning) does not move the date.
    with time_machine.travel(dt.datetime(2027, 2, 10, 12, 0, tzinfo=UTC), tick=True):
        OrderProvisioningListener().provisioning_succeeded(
            deployment_id=order.deployment_id, actor=Actor.system("test")
        )
    deployment.refresh_from_db()
    assert deployment.next_due_date == dt.date(2027, 3, 1)

    # The first renewal covers the next month from the activation day's anniversary.
    with time_machine.travel(dt.datetime(2027, 2, 25, 8, 0, tzinfo=UTC), tick=True):
        assert renewals_run_with_credit()["invoices"] == 1
    renewal = deployment.invoices.get(kind=InvoiceKind.RENEWAL)
    assert (renewal.period_start, renewal.period_end) == (dt.date(2027, 3, 1), dt.date(2027, 4, 1))


def test_an_order_activated_the_day_it_is_paid_keeps_that_day(saga, place_order, staff):
    with time_machine.travel(dt.datetime(2027, 1, 31, 10, 0, tzinfo=UTC), tick=True):
        order = place_order()
        payment_record_manual(
            invoice_id=order.invoices.get().pk, reference="BCA-10", actor=Actor.staff(staff)
        )
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert Deployment.objects.get(pk=order.deployment_id).next_due_date == dt.date(2027, 2, 28)
