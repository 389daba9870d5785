"""Regression tests for the renewal cycle found in review: paid servers never terminated,
unsuspension retried, staff suspensions respected, no date drift, admin permissions."""

import datetime as dt

import time_machine

from billing.models import Invoice, InvoiceKind, InvoiceStatus
from billing.services.dunning import dunning_run
from billing.services.payments import payment_record_manual
from billing.services.renewals import renewal_invoices_issue
from billing.tasks import dunning
from common.actors import Actor
from provisioning import operations
from servers.models import DeploymentStatus
from tests.test_renewals import _at, active  # noqa: F401 (fixture)
from tests.test_saga import pay


def _suspend_for_nonpayment(active, settings):
    due = active.next_due_date
    with _at(due - dt.timedelta(days=7)):
        renewal_invoices_issue()
    with _at(due + dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)):
        dunning.apply()
    active.refresh_from_db()
    assert active.status == DeploymentStatus.SUSPENDED
    return Invoice.objects.get(kind=InvoiceKind.RENEWAL), due


# F1: unsuspend gives up after 6 quick retries; nothing ever tries again.
def test_paid_server_is_unsuspended_after_a_panel_outage(saga, active, staff, settings):
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


# F3: termination needs only "some unpaid renewal", not an overdue one.
def test_staff_suspended_server_with_not_yet_due_invoice_is_not_terminated(
    saga, active, staff, settings
):
    due = active.next_due_date
    operations.deployment_suspend(  # today; the invoice comes ~23 days later
        deployment_id=active.pk, actor=Actor.staff(staff), reason="abuse check"
    )
    with _at(due - dt.timedelta(days=7)):
        renewal_invoices_issue()  # invoice due in 7 days, not overdue
        assert dunning_run()["terminate"] == 0  # was: [active.pk]


# F4: staff/admin termination leaves the renewal invoice payable.
def test_terminated_server_invoice_is_not_payable(saga, active, staff):
    with _at(active.next_due_date - dt.timedelta(days=7)):
        renewal_invoices_issue()
    operations.deployment_terminate(deployment_id=active.pk, actor=Actor.staff(staff), reason="x")
    assert Invoice.objects.get(kind=InvoiceKind.RENEWAL).status == InvoiceStatus.CANCELLED


# F5: month-end anniversary drifts (Jan 31 -> Feb 28 -> Mar 28, not Mar 31).
def test_month_end_anniversary_does_not_drift(saga, place_order, staff):
    with time_machine.travel(dt.datetime(2027, 1, 31, 12, tzinfo=dt.UTC), tick=False):
        order = pay(place_order(addon_slugs=[], plan_slug="starter"), staff)
    deployment = order.deployment
    deployment.refresh_from_db()
    assert deployment.next_due_date == dt.date(2027, 2, 28)
    with _at(dt.date(2027, 2, 21)):
        renewal_invoices_issue()
    assert Invoice.objects.get(kind=InvoiceKind.RENEWAL).period_end == dt.date(2027, 3, 31)


# F6: a renewal that could not be priced is skipped silently, then issued already overdue.
def test_renewal_issued_late_is_not_suspended_in_the_same_hour(saga, active, settings):
    from billing.models import PlanPrice

    due = active.next_due_date
    price = PlanPrice.objects.get(plan__slug="starter", billing_cycle="monthly")
    saved = {f.name: getattr(price, f.name) for f in price._meta.concrete_fields}
    price.delete()
    with _at(due - dt.timedelta(days=7)):
        assert renewal_invoices_issue() == 0  # only a log line
    PlanPrice.objects.create(**saved)
    with _at(due + dt.timedelta(days=10)):
        assert renewal_invoices_issue() == 1
        assert dunning_run()["suspend"] == 0  # was: suspended at once, no notice period


# F7: admin actions carry no `permissions`: a view-only staff user can mark invoices paid.
def test_view_only_staff_cannot_confirm_payment(place_order, client):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    order = place_order()
    invoice = order.invoices.get()
    viewer = UserFactory(username="support@example.com", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(viewer)
    client.post(
        "/admin/billing/invoice/",
        {
            "action": "confirm_manual_payment",
            "_selected_action": [invoice.pk],
            "apply": "1",
            "reference": "FREE-SERVER",
            "note": "",
        },
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID  # was: paid


# F3b: paying the renewal lifts a staff (abuse) suspension.
def test_renewal_payment_does_not_lift_staff_suspension(saga, active, staff):
    operations.deployment_suspend(deployment_id=active.pk, actor=Actor.staff(staff), reason="abuse")
    with _at(active.next_due_date - dt.timedelta(days=7)):
        renewal_invoices_issue()
        invoice = Invoice.objects.get(kind=InvoiceKind.RENEWAL)
        payment_record_manual(invoice_id=invoice.pk, reference="R", actor=Actor.staff(staff))
    active.refresh_from_db()
    assert active.status == DeploymentStatus.SUSPENDED  # was: active


def test_paid_but_stuck_suspended_server_is_later_terminated(saga, active, staff, settings):
    invoice, due = _suspend_for_nonpayment(active, settings)
    saga.fault("status", method="POST", path=r"/unsuspend$", status=503, times=7)
    with _at(due + dt.timedelta(days=4)):
        payment_record_manual(invoice_id=invoice.pk, reference="LATE", actor=Actor.staff(staff))
    active.refresh_from_db()
    with _at(active.next_due_date - dt.timedelta(days=7)):
        renewal_invoices_issue()
        dunning.apply()
    active.refresh_from_db()
    assert active.status != DeploymentStatus.TERMINATED  # was: paid through, yet deleted
