"""Schemathesis over the whole API: every operation of the OpenAPI document (generated from the
URLconf when this module is imported, so routes added later are picked up with no edit here)
runs with generated cases against the app in-process (WSGI, no socket), as a customer token
(read + write) and as a staff token with every scope, and each response must be no 5xx, a
documented status code, a documented content type and a body that matches the schema.

Each case is sent twice per caller: with the generated path parameters (mostly ids of nothing:
404s), and with the ids of the seeded objects where the path names one, so the cases also
reach real orders, invoices, servers, cards and plan changes. Writes change that world as they
go (an order cancelled, a payment confirmed): later cases see it, as a client would.

No network: Stripe (checkout, card setup, detach) answers through `responses` with canned
bodies, the panel through the simulator (panel_simulator.testing); an unmatched outside call
raises ConnectionError, which the clients turn into an error the API renders (a 5xx fails).

Kept small for the suite (2 cores): a few examples per operation, derandomized so a run is
reproducible; set SCHEMATHESIS_MAX_EXAMPLES to search harder locally.
"""

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import responses
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks
from schemathesis.generation import GenerationMode

from billing.models import Invoice, Order, PlanChange, SavedPaymentMethod, StripeCustomer
from common.actors import Actor
from common.dates import billing_today
from common.models import ApiTokenScope
from common.tokens import api_token_create
from panel_simulator import PanelSimulator
from panel_simulator.testing import install_responses
from provisioning.pterodactyl.transport import shared_limiters_reset
from servers.models import Deployment
from tests.fleet import fleet_seed
from tests.support import panel_server_made_by_hand

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5"))
PANEL_URL = "https://panel.test"
STRIPE = "https://api.stripe.com/v1"


def _schema_document() -> dict[str, Any]:
    # The same document /api/schema/ serves, as plain JSON (lazy translations rendered).
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated, renderer_context={}))


schema = schemathesis.openapi.from_dict(_schema_document())
schema.app = get_wsgi_application()
schema.config.generation.update(
    max_examples=MAX_EXAMPLES,
    deterministic=True,
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
)


# What every response is held to. Not `negative_data_rejection` / `positive_data_acceptance`:
# unknown query parameters are ignored by design, and most generated ids name nothing.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


# ---------------------------------------------------------------------- the seeded world


def _stripe(rsps: responses.RequestsMock) -> None:
    """Canned Stripe answers for the calls the API can make (no network)."""
    session = {
        "id": "cs_test_schemathesis",
        "object": "checkout.session",
        "url": "https://checkout.stripe.com/c/pay/cs_test_schemathesis",
        "amount_total": 550,
        "currency": "usd",
        "expires_at": 4102444800,
        "status": "open",
    }
    rsps.add(responses.POST, f"{STRIPE}/checkout/sessions", json=session)
    rsps.add(responses.POST, re.compile(rf"{STRIPE}/checkout/sessions/[^/]+/expire"), json=session)
    rsps.add(responses.GET, re.compile(rf"{STRIPE}/checkout/sessions/[^/]+"), json=session)
    rsps.add(responses.POST, f"{STRIPE}/customers", json={"id": "cus_new", "object": "customer"})
    rsps.add(
        responses.POST,
        re.compile(rf"{STRIPE}/customers/[^/]+"),
        json={"id": "cus_new", "object": "customer"},
    )
    rsps.add(
        responses.POST,
        re.compile(rf"{STRIPE}/payment_methods/[^/]+/detach"),
        json={"id": "pm_detached", "object": "payment_method"},
    )


def _server_on_the_panel(sim: PanelSimulator, deployment_id: int) -> None:
    """The seeded server exists on the simulator too (fleet_seed writes only our rows), so the
    staff panel actions on it (suspend, terminate...) reach a real panel server."""
    created = panel_server_made_by_hand(sim.seed, "schemathesis server")
    Deployment.objects.filter(pk=deployment_id).update(
        panel_server_id=created.id,
        panel_server_uuid=created.uuid,
        panel_identifier=created.identifier,
    )


@pytest.fixture
def world(db, settings, catalog, customer, staff, place_order) -> Iterator[dict[str, Any]]:
    from billing.services.payments import payment_record_manual

    sim = PanelSimulator(install_delay=0, rng_seed=1)
    shared_limiters_reset()
    settings.PTERODACTYL_URL = PANEL_URL
    settings.PTERODACTYL_ADMIN_API_KEY = sim.seed.admin_api_key
    settings.PTERODACTYL_RATE_LIMIT_PER_MINUTE = 1_000_000
    settings.PTERODACTYL_RATE_LIMIT_REDIS_URL = None
    settings.PTERODACTYL_HTTP_MAX_RETRIES = 0
    settings.PANEL_OPERATIONS_RATE_LIMIT_PER_MINUTE = 1_000_000

    pending = place_order()
    paid = place_order(plan_slug="silver")
    payment_record_manual(
        invoice_id=paid.invoices.get().pk, reference="SEED-1", actor=Actor.staff(staff)
    )
    # A live server of the customer (plan changes, cancellation, the servers API).
    server_id = fleet_seed(
        count=1, next_due_date=billing_today() + dt.timedelta(days=10)
    ).deployment_ids[0]
    server_order = Order.objects.get(deployment_id=server_id)
    Order.objects.filter(pk=server_order.pk).update(customer=customer)
    Invoice.objects.filter(order=server_order).update(customer=customer)
    Deployment.objects.filter(pk=server_id).update(customer=customer)
    StripeCustomer.objects.get_or_create(
        customer=customer, defaults={"stripe_customer_id": "cus_1"}
    )
    card = SavedPaymentMethod.objects.create(
        customer=customer,
        stripe_payment_method_id="pm_card_1",
        brand="visa",
        last4="4242",
        exp_month=8,
        exp_year=2030,
        is_default=True,
    )
    tokens = {
        "customer": api_token_create(
            user=customer,
            name="schemathesis customer",
            scopes=[ApiTokenScope.READ, ApiTokenScope.WRITE],
            actor=Actor.system("test"),
        ).plaintext,
        "staff": api_token_create(
            user=staff,
            name="schemathesis staff",
            scopes=[s.value for s in ApiTokenScope],
            actor=Actor.system("test"),
        ).plaintext,
    }
    # Real ids for path parameters, by name (a name not listed keeps its generated value).
    real_ids: dict[str, Any] = {
        "order_id": pending.pk,
        "invoice_id": pending.invoices.get().pk,
        "deployment_id": server_id,
        "server_id": server_id,
        "payment_method_id": card.pk,
        # No plan change yet: a case's POST may create one; its id is found at call time.
        "change_id": None,
        "slug": "bronze",
    }
    # As Django's test client does: the WSGI handler's request signals would close the test's
    # database connection (and its transaction) after every call.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            install_responses(rsps, sim, PANEL_URL)
            _stripe(rsps)
            _server_on_the_panel(sim, server_id)
            yield {"tokens": tokens, "real_ids": real_ids}
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# ---------------------------------------------------------------------- the run


@schema.parametrize()
@settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_the_schema(case, world):
    generated = dict(case.path_parameters or {})
    variants = [generated]
    if generated:
        variants.append(
            {name: world["real_ids"].get(name, value) for name, value in generated.items()}
        )
    for path_parameters in variants:
        if path_parameters.get("change_id", 0) is None:
            path_parameters["change_id"] = (
                PlanChange.objects.filter(deployment_id=world["real_ids"]["deployment_id"])
                .values_list("pk", flat=True)
                .first()
                or generated["change_id"]
            )
        case.path_parameters = path_parameters
        for role in ("customer", "staff"):
            case.call_and_validate(
                headers={"Authorization": f"Bearer {world['tokens'][role]}"}, checks=CHECKS
            )
