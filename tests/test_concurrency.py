"""Races on PostgreSQL with real separate connections: money and hand-off happen once."""

import pytest
from django.db import connection

from billing.models import Payment
from billing.services.payments import payment_record_manual
from billing.services.stripe_payments import stripe_webhook_receive
from common.actors import Actor
from common.errors import ConflictError
from provisioning.models import ProvisioningRequest
from provisioning.services import provisioning_request_create
from tests.support import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only(settings) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")
    # These races are about money and the hand-off; the saga's own races are in test_saga_*.
    settings.PROVISIONING_ENABLED = False


def test_two_staff_confirming_the_same_invoice_apply_money_once(place_order, staff):
    invoice = place_order().invoices.get()

    results = race(
        [
            lambda: payment_record_manual(
                invoice_id=invoice.pk, reference="A", actor=Actor.staff(staff)
            ),
            lambda: payment_record_manual(
                invoice_id=invoice.pk, reference="B", actor=Actor.staff(staff)
            ),
        ]
    )

    assert sum(isinstance(r, Payment) for r in results) == 1
    assert sum(isinstance(r, ConflictError) for r in results) == 1
    assert Payment.objects.count() == 1
    assert ProvisioningRequest.objects.count() == 1


def test_duplicate_stripe_deliveries_racing_apply_money_once(place_order, settings):
    from billing.tests.test_stripe import event, sign

    invoice = place_order().invoices.get()
    payload = event("evt_race", "checkout.session.completed", invoice)
    signature = sign(payload)

    results = race(
        [
            lambda: stripe_webhook_receive(payload=payload, signature_header=signature)
            for _ in range(4)
        ]
    )

    assert not [r for r in results if isinstance(r, Exception)]
    assert Payment.objects.count() == 1
    assert ProvisioningRequest.objects.count() == 1


def test_provisioning_request_is_unique_per_deployment_under_a_race(place_order):
    deployment = place_order().deployment

    results = race(
        [
            lambda: provisioning_request_create(
                deployment_id=deployment.pk, order_reference="Order #x", actor=Actor.system()
            )
            for _ in range(5)
        ]
    )

    assert not [r for r in results if isinstance(r, Exception)]
    assert len({r.pk for r in results}) == 1
    assert ProvisioningRequest.objects.count() == 1
    assert ProvisioningRequest.objects.get().events.count() == 1
