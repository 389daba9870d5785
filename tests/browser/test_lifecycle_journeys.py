"""A customer's journeys through a live server's lifecycle, in a real browser: cancel at the
end of the term and change their mind; upgrade, pay the difference, get the bigger server.

The server is provisioned for real on the panel simulator (the `saga` fixture); the browser
clicks what a customer clicks.
"""

import re

import pytest

from billing.models import (
    Cancellation,
    CancellationStatus,
    InvoiceKind,
    PlanChange,
    PlanChangeStatus,
)
from billing.services.payments import payment_record_manual
from common.actors import Actor
from servers.models import DeploymentStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def active_server(saga, place_order, staff, settings):  # type: ignore[no-untyped-def]
    settings.PTERODACTYL_CLIENT_API_KEY = saga.sim.seed.client_api_key
    order = place_order()
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference="R-1", actor=Actor.staff(staff)
    )
    order.deployment.refresh_from_db()
    assert order.deployment.status == DeploymentStatus.ACTIVE
    return order.deployment


def test_cancel_at_end_of_term_then_keep_the_server(logged_in_page, active_server):
    page = logged_in_page
    page.goto(f"/servers/{active_server.pk}/")
    page.get_by_role("link", name="Cancel server").click()

    page.get_by_label("At the end of the paid period").check()
    page.get_by_role("button", name="Continue").click()
    due = active_server.next_due_date.isoformat()
    page.get_by_role("button", name=f"Cancel on {due}").click()

    assert page.get_by_text(re.compile(f"terminated and its files deleted on {due}")).count()
    cancellation = Cancellation.objects.get(deployment=active_server)
    assert cancellation.status == CancellationStatus.SCHEDULED
    assert cancellation.effective_on == active_server.next_due_date
    assert cancellation.events.get().actor_label == "customer:alice@example.com"

    page.goto(f"/servers/{active_server.pk}/")
    page.get_by_role("button", name="Keep my server").click()

    cancellation.refresh_from_db()
    assert cancellation.status == CancellationStatus.REVOKED
    active_server.refresh_from_db()
    assert active_server.status == DeploymentStatus.ACTIVE
    page.goto(f"/servers/{active_server.pk}/")
    assert page.get_by_role("link", name="Cancel server").count() == 1


def test_upgrade_pay_the_difference_and_get_the_bigger_server(
    logged_in_page, active_server, saga, staff
):
    page = logged_in_page
    page.goto(f"/servers/{active_server.pk}/")
    page.get_by_role("link", name="Change plan").click()

    # Only the server's own family is offered (no Discord-bot tiers for a Minecraft server).
    assert page.get_by_label("Silver").count() == 1
    assert page.get_by_label("Starter").count() == 0
    page.get_by_label("Silver").check()
    page.get_by_role("button", name="Change plan").click()

    change = PlanChange.objects.get(deployment=active_server)
    assert change.status == PlanChangeStatus.AWAITING_PAYMENT
    invoice = change.invoice
    assert invoice.kind == InvoiceKind.UPGRADE
    assert invoice.total > 0
    # The page shows the pending change with its invoice; the panel has not changed yet.
    pending = page.locator("#pending-change")
    assert pending.get_by_text("Awaiting payment").count() == 1
    assert saga.panel.servers[active_server.panel_server_id].memory == 1024

    pending.get_by_role("link", name=invoice.number).click()
    assert page.get_by_text(f"{invoice.total} {invoice.currency}").count() >= 1

    payment_record_manual(invoice_id=invoice.pk, reference="T-UP", actor=Actor.staff(staff))

    page.goto(f"/servers/{active_server.pk}/plan/")
    assert page.get_by_text("Now on Silver").count() == 1
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.APPLIED
    assert saga.panel.servers[active_server.panel_server_id].memory == 2048
