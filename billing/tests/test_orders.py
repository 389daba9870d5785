from decimal import Decimal

import pytest

from billing.models import (
    Coupon,
    Invoice,
    InvoiceLineKind,
    InvoiceStatus,
    Order,
    OrderStatus,
)
from billing.services.orders import order_cancel
from billing.services.quotes import order_quote
from common.actors import Actor
from common.errors import ApplicationError, ConflictError
from provisioning.models import ProvisioningRequest
from servers.models import Deployment, DeploymentStatus
from tests import factories

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, int, int]:
    return Order.objects.count(), Invoice.objects.count(), Deployment.objects.count()


def test_bronze_monthly_order_creates_pending_order_deployment_and_exact_invoice(place_order):
    order = place_order(server_name="My SMP")

    assert order.status == OrderStatus.PENDING
    invoice = order.invoices.get()
    assert invoice.status == InvoiceStatus.UNPAID
    assert invoice.currency == "USD"
    assert [(line.kind, line.amount) for line in invoice.lines.all()] == [
        (InvoiceLineKind.PLAN, Decimal("4.00")),
        (InvoiceLineKind.SETUP_FEE, Decimal("1.50")),
    ]
    assert (invoice.subtotal, invoice.discount_total, invoice.total) == (
        Decimal("5.50"),
        Decimal("0.00"),
        Decimal("5.50"),
    )
    assert invoice.number.startswith("INV-")
    deployment = order.deployment
    assert deployment.status == DeploymentStatus.PENDING
    assert deployment.name == "My SMP"
    assert deployment.spec["limits"]["memory"] == 1024
    assert deployment.spec["feature_limits"] == {"databases": 1, "allocations": 1, "backups": 1}
    # Egg defaults are copied into the environment (the panel does not fill them in).
    assert deployment.spec["environment"]["SERVER_JARFILE"] == "server.jar"
    assert deployment.spec["environment"]["BUILD_NUMBER"] == "latest"
    assert [e.to_status for e in order.events.all()] == ["pending"]
    assert not ProvisioningRequest.objects.exists()


def test_invoice_numbers_are_sequential(place_order):
    first = place_order().invoices.get().number
    second = place_order().invoices.get().number
    assert int(second.rsplit("-", 1)[1]) == int(first.rsplit("-", 1)[1]) + 1


def test_addon_boosts_resources_and_adds_a_line(place_order):
    order = place_order(plan_slug="starter", addon_slugs=["private-instance"])

    limits = order.deployment.spec["limits"]
    assert (limits["memory"], limits["cpu"], limits["disk"]) == (512 + 512, 50 + 50, 1024 + 1024)
    invoice = order.invoices.get()
    assert [line.kind for line in invoice.lines.all()] == ["plan", "addon"]
    assert invoice.total == Decimal("2.00") + Decimal("3.00")


@pytest.mark.parametrize(
    ("overrides", "field", "message_part"),
    [
        ({"plan_slug": "nope"}, "plan", "No active plan"),
        ({"billing_cycle": "weekly"}, "billing_cycle", "not a billing cycle"),
        ({"location_code": "mars"}, "location", "No location"),
        ({"addon_slugs": ["private-instance"]}, "addons", "cannot be added to Bronze"),
        ({"addon_slugs": ["ghost"]}, "addons", "No add-on"),
        ({"coupon_code": "NOPE"}, "coupon", "Unknown coupon"),
        ({"variables": {"SERVER_JARFILE": "server.zip"}}, "variables.SERVER_JARFILE", "format"),
        ({"variables": {"BUILD_NUMBER": "x" * 21}}, "variables.BUILD_NUMBER", "greater than 20"),
        ({"variables": {"DL_PATH": "http://evil"}}, "variables.DL_PATH", "cannot be changed"),
        ({"variables": {"NOT_A_VAR": "1"}}, "variables.NOT_A_VAR", "not a variable"),
    ],
)
def test_invalid_orders_are_refused_with_field_errors_and_write_nothing(
    place_order, overrides, field, message_part
):
    before = _counts()
    with pytest.raises(ApplicationError) as caught:
        place_order(**overrides)
    assert field in caught.value.field_errors
    assert any(message_part in m for m in caught.value.field_errors[field])
    assert _counts() == before


def test_inactive_plan_and_disallowed_location_are_refused(catalog, place_order):
    from billing.models import Plan
    from servers.models import Location

    gold = Plan.objects.get(slug="gold")
    gold.allowed_locations.set([Location.objects.get(short_code="us")])
    with pytest.raises(ApplicationError) as caught:
        place_order(plan_slug="gold", location_code="eu")
    assert caught.value.field_errors["location"] == ["Gold is not available in eu."]

    Plan.objects.filter(slug="silver").update(is_active=False)
    with pytest.raises(ApplicationError) as caught:
        place_order(plan_slug="silver")
    assert "plan" in caught.value.field_errors


def test_cycle_without_price_is_refused(catalog, place_order):
    from billing.models import PlanPrice

    PlanPrice.objects.filter(plan__slug="bronze", billing_cycle="annual").update(is_active=False)
    with pytest.raises(ApplicationError) as caught:
        place_order(billing_cycle="annual")
    assert caught.value.field_errors["billing_cycle"] == ["Bronze is not offered annual in USD."]


def test_percent_coupon_discounts_plan_not_setup_fee(place_order):
    factories.CouponFactory(code="TENOFF", kind="percent", value=Decimal("10"))
    order = place_order(coupon_code="tenoff")

    invoice = order.invoices.get()
    assert invoice.discount_total == Decimal("0.40")
    assert invoice.total == Decimal("5.10")
    assert invoice.lines.get(kind="discount").amount == Decimal("-0.40")
    assert Coupon.objects.get(code="TENOFF").times_redeemed == 1


def test_fixed_coupon_is_capped_at_the_eligible_amount(place_order):
    factories.CouponFactory(code="BIG", kind="fixed", value=Decimal("50"), currency="USD")
    invoice = place_order(coupon_code="BIG").invoices.get()
    assert invoice.discount_total == Decimal("4.00")
    assert invoice.total == Decimal("1.50")


def test_coupon_limits_expiry_and_scope(place_order, customer):
    import datetime as dt

    from django.utils import timezone

    factories.CouponFactory(code="ONCE", max_redemptions=1)
    place_order(coupon_code="ONCE")
    with pytest.raises(ApplicationError) as caught:
        place_order(coupon_code="ONCE")
    assert caught.value.field_errors["coupon"] == ["This coupon has been used up."]

    factories.CouponFactory(code="OLD", valid_until=timezone.now() - dt.timedelta(days=1))
    with pytest.raises(ApplicationError) as caught:
        place_order(coupon_code="OLD")
    assert caught.value.field_errors["coupon"] == ["This coupon has expired."]

    scoped = factories.CouponFactory(code="GOLDONLY")
    from billing.models import Plan

    scoped.plans.set([Plan.objects.get(slug="gold")])
    with pytest.raises(ApplicationError) as caught:
        place_order(coupon_code="GOLDONLY")
    assert caught.value.field_errors["coupon"] == ["This coupon does not apply to the Bronze plan."]

    factories.CouponFactory(code="EURO", kind="fixed", value=Decimal("1"), currency="EUR")
    with pytest.raises(ApplicationError) as caught:
        place_order(coupon_code="EURO")
    assert "EUR" in caught.value.field_errors["coupon"][0]


def test_full_discount_order_is_settled_and_handed_to_provisioning(place_order):
    factories.CouponFactory(
        code="FREE", kind="percent", value=Decimal("100"), applies_to_setup_fee=True
    )
    order = place_order(coupon_code="FREE")

    assert order.status == OrderStatus.PROVISIONING
    invoice = order.invoices.get()
    assert invoice.total == Decimal("0.00")
    assert invoice.status == InvoiceStatus.PAID
    assert not invoice.payments.exists()
    assert ProvisioningRequest.objects.filter(deployment=order.deployment).count() == 1


def test_idempotency_key_returns_the_first_order(place_order):
    first = place_order(idempotency_key="abc")
    again = place_order(idempotency_key="abc")
    assert again.pk == first.pk
    assert Order.objects.count() == 1


def test_cancel_unpaid_order_cancels_invoice_deployment_and_returns_coupon(place_order, customer):
    factories.CouponFactory(code="TENOFF")
    order = place_order(coupon_code="TENOFF")

    order_cancel(order_id=order.pk, actor=Actor.customer(customer), reason="Changed my mind")

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.invoices.get().status == InvoiceStatus.CANCELLED
    assert order.deployment.status == DeploymentStatus.CANCELLED
    assert Coupon.objects.get(code="TENOFF").times_redeemed == 0
    assert [e.to_status for e in order.events.all()] == ["pending", "cancelled"]
    with pytest.raises(ConflictError):
        order_cancel(order_id=order.pk, actor=Actor.customer(customer), reason="again")


def test_quote_writes_nothing(catalog, customer):
    before = _counts()
    quote = order_quote(
        customer=customer, plan_slug="diamond", billing_cycle="annual", location_code="us"
    )
    assert quote.total == Decimal("530.40")  # 52.00 * 12 * 0.85, setup fee waived
    assert _counts() == before


def test_unsynced_egg_accepts_plain_string_variables(catalog, customer):
    from billing.models import Plan

    Plan.objects.filter(slug="bronze").update(egg_id=999)
    quote = order_quote(
        customer=customer,
        plan_slug="bronze",
        billing_cycle="monthly",
        location_code="eu",
        variables={"ANYTHING": "value"},
    )
    assert quote.spec["environment"] == {"ANYTHING": "value"}
    assert quote.spec["egg_id"] == 999
