"""The renewal cycle: invoice before the due date, paid -> extended; unpaid -> reminded,
suspended on the panel, unsuspended when paid, terminated in the end. And its edges: a panel
outage during the unsuspension, staff suspensions, month-end anniversaries, late invoices."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from billing.catalog import plan_panel_spec
from billing.models import Invoice, InvoiceKind, InvoiceStatus, Plan, PlanPrice
from billing.services.dunning import dunning_run
from billing.services.payments import payment_record_manual
from billing.services.renewals import renewal_invoices_issue
from billing.tasks import dunning, issue_renewal_invoices
from common.actors import Actor
from notifications.models import Delivery
from provisioning import operations
from servers.models import DeploymentStatus
from tests.test_saga import pay


@pytest.fixture
def active(saga, place_order, staff):
    order = pay(
        place_order(
            addon_slugs=[],
            plan_slug="starter",
        ),
        staff,
    )
    deployment = order.deployment
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.ACTIVE
    return deployment


def _at(date: dt.date, hour: int = 12):
    return time_machine.travel(
        dt.datetime(date.year, date.month, date.day, hour, tzinfo=dt.UTC), tick=False
    )


def _suspend_for_nonpayment(active, settings):
    due = active.next_due_date
    with _at(due - dt.timedelta(days=7)):
        renewal_invoices_issue()
    with _at(due + dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)):
        dunning.apply()
    active.refresh_from_db()
    assert active.status == DeploymentStatus.SUSPENDED
    return Invoice.objects.get(kind=InvoiceKind.RENEWAL), due


def test_renewal_invoice_is_issued_once_before_the_due_date(saga, active):
    due = active.next_due_date
    with _at(due - dt.timedelta(days=8)):
        assert renewal_invoices_issue() == 0  # too early
    with _at(due - dt.timedelta(days=7)):
        assert renewal_invoices_issue() == 1
        assert renewal_invoices_issue() == 0  # safe to run twice

    invoice = Invoice.objects.get(kind=InvoiceKind.RENEWAL)
    assert (invoice.period_start, invoice.due_date) == (due, due)
    assert invoice.total == invoice.lines.get().amount  # the plan only: no setup fee
    assert [line.kind for line in invoice.lines.all()] == ["plan"]
    assert Delivery.objects.filter(event="invoice_created", event_key__endswith=invoice.number)


def test_paying_the_renewal_extends_the_server(saga, active, staff):
    due = active.next_due_date
    with _at(due - dt.timedelta(days=7)):
        issue_renewal_invoices.apply()
        invoice = Invoice.objects.get(kind=InvoiceKind.RENEWAL)
        payment_record_manual(invoice_id=invoice.pk, reference="RENEW-1", actor=Actor.staff(staff))
    active.refresh_from_db()
    assert active.next_due_date == invoice.period_end
    assert active.status == DeploymentStatus.ACTIVE
    with _at(due):
        assert renewal_invoices_issue() == 0  # the next period is not due yet


def test_unpaid_renewal_reminds_suspends_unsuspends_on_payment(saga, active, staff, settings):
    due = active.next_due_date
    server = saga.panel.servers[active.panel_server_id]
    with _at(due - dt.timedelta(days=7)):
        renewal_invoices_issue()
    invoice = Invoice.objects.get(kind=InvoiceKind.RENEWAL)
    with _at(due - dt.timedelta(days=settings.BILLING_REMINDER_DAYS)):
        counts = dunning_run()
        assert (counts["suspend"], counts["terminate"], counts["unsuspend"]) == (0, 0, 0)
        assert counts["reminders"] == 1
    assert Delivery.objects.filter(event="invoice_reminder").exists()
    with _at(due + dt.timedelta(days=1)):
        assert dunning_run()["suspend"] == 0  # overdue, still in the grace period
    assert Delivery.objects.filter(event="invoice_overdue").count() == 1

    with _at(due + dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)):
        dunning.apply()  # queues (eagerly runs) the suspension
        dunning.apply()  # a second beat changes nothing
    active.refresh_from_db()
    assert active.status == DeploymentStatus.SUSPENDED
    assert server.status == "suspended"
    assert Delivery.objects.filter(event="invoice_overdue").count() == 1
    assert Delivery.objects.filter(event="server_suspended").count() == 1

    with _at(due + dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS + 1)):
        payment_record_manual(invoice_id=invoice.pk, reference="LATE", actor=Actor.staff(staff))
    active.refresh_from_db()
    assert active.status == DeploymentStatus.ACTIVE
    assert server.status is None
    assert active.next_due_date == invoice.period_end


def test_still_unpaid_after_the_termination_grace_is_terminated(saga, active, settings):
    due = active.next_due_date
    with _at(due - dt.timedelta(days=7)):
        renewal_invoices_issue()
    with _at(due + dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)):
        dunning.apply()
    active.refresh_from_db()
    assert active.status == DeploymentStatus.SUSPENDED
    suspended_at = timezone.localtime(active.suspended_at).date()
    with _at(suspended_at + dt.timedelta(days=settings.TERMINATION_GRACE_DAYS - 1)):
        assert dunning_run()["terminate"] == 0
    with _at(suspended_at + dt.timedelta(days=settings.TERMINATION_GRACE_DAYS + 1)):
        dunning.apply()
    active.refresh_from_db()
    assert active.status == DeploymentStatus.TERMINATED
    assert active.panel_server_id not in saga.panel.servers
    assert Invoice.objects.get(kind=InvoiceKind.RENEWAL).status == InvoiceStatus.CANCELLED
    assert Delivery.objects.filter(event="server_terminated").count() == 1


def test_renewal_bills_the_plan_the_server_has_now(saga, active, staff, catalog):
    pro = Plan.objects.get(slug="pro")
    operations.deployment_change_build(
        deployment_id=active.pk,
        spec=plan_panel_spec(pro),
        plan_slug="pro",
        plan_name="Pro",
        actor=Actor.staff(staff),
    )
    with _at(active.next_due_date - dt.timedelta(days=7)):
        renewal_invoices_issue()

    line = Invoice.objects.get(kind=InvoiceKind.RENEWAL).lines.get()
    assert line.description == "Pro renewal (Monthly)"
    assert line.amount == pro.prices.get(billing_cycle="monthly").amount


def test_server_deleted_on_the_panel_by_hand_alerts_staff_once(saga, active, settings):
    with _at(active.next_due_date - dt.timedelta(days=7)):
        renewal_invoices_issue()
    del saga.panel.servers[active.panel_server_id]  # someone deleted it in the panel

    for extra_day in (0, 1):
        with _at(
            active.next_due_date + dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS + extra_day)
        ):
            result = dunning.apply()
            assert result.successful()

    alerts = Delivery.objects.filter(event="provisioning_failed_staff")
    assert alerts.count() == 1
    assert alerts.get().context["step"] == "renewals: suspend"
    active.refresh_from_db()
    assert active.status == DeploymentStatus.ACTIVE  # nothing pretended


def test_month_end_anniversary_does_not_drift(saga, place_order, staff):
    # Jan 31 -> Feb 28 -> Mar 31: each period ends on the first period's day where it exists.
    with time_machine.travel(dt.datetime(2027, 1, 31, 12, tzinfo=dt.UTC), tick=False):
        order = pay(place_order(addon_slugs=[], plan_slug="starter"), staff)
    deployment = order.deployment
    deployment.refresh_from_db()
    assert deployment.next_due_date == dt.date(2027, 2, 28)
    with _at(dt.date(2027, 2, 21)):
        renewal_invoices_issue()
    assert Invoice.objects.get(kind=InvoiceKind.RENEWAL).period_end == dt.date(2027, 3, 31)


def test_renewal_issued_late_is_not_suspended_in_the_same_hour(saga, active, settings):
    # A renewal that could not be priced is issued once it can be, with the reminder period
    # still ahead of it, not already overdue.
    due = active.next_due_date
    price = PlanPrice.objects.get(plan__slug="starter", billing_cycle="monthly")
    saved = {f.name: getattr(price, f.name) for f in price._meta.concrete_fields}
    price.delete()
    with _at(due - dt.timedelta(days=7)):
        assert renewal_invoices_issue() == 0  # only a log line
    PlanPrice.objects.create(**saved)
    with _at(due + dt.timedelta(days=10)):
        assert renewal_invoices_issue() == 1
        assert dunning_run()["suspend"] == 0


def test_paid_server_is_unsuspended_after_a_panel_outage(saga, active, staff, settings):
    # The unsuspension outlives its task's retries: every dunning run asks again.
    invoice, due = _suspend_for_nonpayment(active, settings)
    saga.fault("status", method="POST", path=r"/unsuspend$", status=503, times=7)
    with _at(due + dt.timedelta(days=4)):
        payment_record_manual(invoice_id=invoice.pk, reference="LATE", actor=Actor.staff(staff))
    for day in (5, 6, 10):  # panel healthy again; beat keeps running
        with _at(due + dt.timedelta(days=day)):
            dunning.apply()
            renewal_invoices_issue()
    active.refresh_from_db()
    assert active.status == DeploymentStatus.ACTIVE


def test_paid_server_still_suspended_after_an_outage_is_not_terminated(
    saga, active, staff, settings
):
    invoice, due = _suspend_for_nonpayment(active, settings)
    saga.fault("status", method="POST", path=r"/unsuspend$", status=503, times=7)
    with _at(due + dt.timedelta(days=4)):
        payment_record_manual(invoice_id=invoice.pk, reference="LATE", actor=Actor.staff(staff))
    active.refresh_from_db()
    with _at(active.next_due_date - dt.timedelta(days=7)):
        renewal_invoices_issue()
        dunning.apply()
    active.refresh_from_db()
    assert active.status != DeploymentStatus.TERMINATED


def test_staff_suspended_server_with_not_yet_due_invoice_is_not_terminated(
    saga, active, staff, settings
):
    # Termination needs an overdue renewal, not merely an unpaid one.
    due = active.next_due_date
    operations.deployment_suspend(  # today; the invoice comes ~23 days later
        deployment_id=active.pk, actor=Actor.staff(staff), reason="abuse check"
    )
    with _at(due - dt.timedelta(days=7)):
        renewal_invoices_issue()  # invoice due in 7 days, not overdue
        assert dunning_run()["terminate"] == 0


def test_renewal_payment_does_not_lift_staff_suspension(saga, active, staff):
    operations.deployment_suspend(deployment_id=active.pk, actor=Actor.staff(staff), reason="abuse")
    with _at(active.next_due_date - dt.timedelta(days=7)):
        renewal_invoices_issue()
        invoice = Invoice.objects.get(kind=InvoiceKind.RENEWAL)
        payment_record_manual(invoice_id=invoice.pk, reference="R", actor=Actor.staff(staff))
    active.refresh_from_db()
    assert active.status == DeploymentStatus.SUSPENDED


def test_terminating_a_server_voids_its_unpaid_renewal_invoice(saga, active, staff):
    # Staff terminations too, not only dunning's: nothing is owed for a server that is gone.
    with _at(active.next_due_date - dt.timedelta(days=7)):
        renewal_invoices_issue()
    operations.deployment_terminate(deployment_id=active.pk, actor=Actor.staff(staff), reason="x")
    assert Invoice.objects.get(kind=InvoiceKind.RENEWAL).status == InvoiceStatus.CANCELLED
