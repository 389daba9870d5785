"""Fixtures shared by every test package."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.services.catalog import catalog_seed_default
from servers.demo import demo_servers_seed
from tests import factories


@pytest.fixture
def user_factory(db):
    return factories.UserFactory


@pytest.fixture
def customer(db):
    return factories.UserFactory(username="alice@example.com")


@pytest.fixture
def other_customer(db):
    return factories.UserFactory(username="mallory@example.com")


@pytest.fixture
def staff(db):
    return factories.StaffFactory(username="staff@example.com")


@pytest.fixture
def catalog(db):
    """The default demo catalog: locations eu/us, the Paper and bot eggs, all plans."""
    demo_servers_seed()
    catalog_seed_default(currency="USD")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def customer_api(customer) -> APIClient:
    client = APIClient()
    client.force_authenticate(customer)
    return client


@pytest.fixture
def staff_api(staff) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def place_order(catalog, customer):
    """Place an order through the service; defaults: Bronze monthly in eu."""
    from billing.services.orders import order_place
    from common.actors import Actor

    def _place(**overrides):
        arguments = {
            "customer": customer,
            "plan_slug": "bronze",
            "billing_cycle": "monthly",
            "location_code": "eu",
            "actor": Actor.customer(overrides.get("customer", customer)),
        }
        arguments.update(overrides)
        return order_place(**arguments)

    return _place


BRONZE_MONTHLY_TOTAL = Decimal("5.50")  # 4.00 plan + 1.50 setup fee
