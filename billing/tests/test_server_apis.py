"""The servers API (billing.apis_servers) with real bearer tokens: customers list and read their
own servers, send power signals and ask for their login; staff see every server and suspend,
unsuspend, terminate and change plans through the admin's services (the panel simulator via
`responses`). Another customer's server is 404, a wrong scope 403, and a refused call changes
nothing."""

import datetime as dt

import pytest
import responses
from django.utils import timezone

from billing.models import Invoice, InvoiceStatus, Order, OrderStatus
from billing.services.payments import payment_record_manual
from common.actors import Actor
from notifications.models import Delivery
from provisioning.pterodactyl.transport import shared_limiters_reset
from servers.models import Deployment, DeploymentEvent, DeploymentStatus, Node, PowerAction
from tests.conftest import saga  # noqa: F401  (the panel simulator world, as tests/ use it)
from tests.support import client_api_stats

pytestmark = pytest.mark.django_db(transaction=True)

PANEL = "https://panel.test"
CLIENT_KEY = "ptlc_SECRETclientKEY0123456789abcdefghijkl"
IDENT = "abcd1234"
LIST = "/api/v1/servers/"


def _url(deployment_id: int, action: str = "") -> str:
    return f"{LIST}{deployment_id}/" + (f"{action}/" if action else "")


def _activate(order, *, port=25565, due=dt.date(2030, 1, 31)) -> Deployment:
    """A live server without the saga (its panel answers through `responses`)."""
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.CONFIRMED, confirmed_at=timezone.now()
    )
    d = order.deployment
    d.status = DeploymentStatus.ACTIVE
    d.node = Node.objects.filter(location=d.location).first()
    d.panel_server_id = 7000 + d.pk
    d.panel_identifier = IDENT
    d.ip_address = "203.0.113.7"
    d.port = port
    d.next_due_date = due
    d.save()
    Invoice.objects.filter(order=order).update(status=InvoiceStatus.PAID, paid_at=timezone.now())
    return d


def _state() -> list[tuple]:
    rows = Deployment.objects.order_by("id").values_list(
        "id", "status", "plan_slug", "suspension_cause", "terminated_at"
    )
    return [*rows, ("events", DeploymentEvent.objects.count(), PowerAction.objects.count())]


@pytest.fixture
def panel(settings):
    """The panel's client API (live figures, power) through `responses`."""
    settings.PTERODACTYL_URL = PANEL
    settings.PTERODACTYL_CLIENT_API_KEY = CLIENT_KEY
    settings.PTERODACTYL_RATE_LIMIT_REDIS_URL = None
    shared_limiters_reset()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def live(saga, place_order, staff):  # noqa: F811
    """A server provisioned for real on the simulator: the order paid by bank transfer."""
    order = place_order()
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference=f"R-{order.pk}", actor=Actor.staff(staff)
    )
    deployment = Deployment.objects.get(pk=order.deployment_id)
    assert deployment.status == DeploymentStatus.ACTIVE
    return deployment


# ---------------------------------------------------------------------- list


def test_customer_lists_only_their_servers_paginated(
    token_api, customer, other_customer, place_order
):
    mine = [_activate(place_order()), place_order().deployment]
    theirs = place_order(customer=other_customer).deployment
    body = token_api(customer).get(LIST).json()
    assert body["count"] == 2
    assert body["next"] is None
    assert body["previous"] is None
    assert [s["id"] for s in body["results"]] == [mine[1].pk, mine[0].pk]  # newest first
    assert theirs.pk not in [s["id"] for s in body["results"]]

    active, pending = body["results"][1], body["results"][0]
    assert active["status"] == "active"
    assert active["address"] == "203.0.113.7:25565"
    assert active["plan"] == {"slug": "bronze", "name": "Bronze"}
    assert active["location"] == "eu"
    assert active["renewal"]["state"] == "renews"
    assert active["next_due_date"] == "2030-01-31"
    assert active["limits"]["memory_mb"] == mine[0].spec["limits"]["memory"]
    assert active["customer"] == {"id": customer.pk, "email": customer.email}
    assert pending["status"] == "pending"
    assert pending["address"] == ""
    assert pending["renewal"]["state"] == "not_started"
    assert pending["suspension"] is None

    page = token_api(customer).get(LIST, {"page_size": 1}).json()
    assert page["count"] == 2
    assert len(page["results"]) == 1
    assert page["next"]


def test_customer_cannot_widen_the_list_with_customer(
    token_api, customer, other_customer, place_order
):
    place_order(customer=other_customer)
    mine = place_order().deployment
    body = token_api(customer).get(LIST, {"customer": other_customer.pk}).json()
    assert [s["id"] for s in body["results"]] == [mine.pk]


def test_staff_list_every_server_and_filter(
    token_api, staff, customer, other_customer, place_order
):
    a = _activate(place_order(), due=dt.date(2030, 1, 10))
    b = place_order(customer=other_customer, plan_slug="silver", location_code="us").deployment
    c = _activate(place_order(customer=other_customer), port=25566, due=dt.date(2030, 3, 1))
    api = token_api(staff)

    def ids(**params):
        response = api.get(LIST, params)
        assert response.status_code == 200, response.json()
        return [s["id"] for s in response.json()["results"]]

    assert ids() == [c.pk, b.pk, a.pk]
    assert ids(customer=other_customer.pk) == [c.pk, b.pk]
    assert ids(customer=customer.email) == [a.pk]
    assert ids(status="active") == [c.pk, a.pk]
    assert api.get(f"{LIST}?status=pending&status=active").json()["count"] == 3
    assert ids(plan="silver") == [b.pk]
    assert ids(location="us") == [b.pk]
    assert ids(node=a.node_id) == [c.pk, a.pk]
    assert ids(next_due_before="2030-02-01") == [a.pk]
    assert ids(next_due_after="2030-02-01") == [c.pk]
    today = timezone.now().date().isoformat()
    assert ids(created_after=f"{today}T00:00:00Z") == [c.pk, b.pk, a.pk]
    assert ids(created_before="2000-01-01T00:00:00Z") == []


def test_invalid_filters_are_400_with_field_messages(token_api, staff, place_order):
    place_order()
    response = token_api(staff).get(LIST, {"status": "sleeping", "next_due_before": "soon"})
    assert response.status_code == 400
    body = response.json()
    assert set(body["extra"]["fields"]) == {"status", "next_due_before"}
    assert token_api(staff).get(LIST, {"page": 99}).status_code == 404


def test_list_queries_do_not_grow_with_servers(
    token_api, customer, place_order, django_assert_max_num_queries
):
    api = token_api(customer)
    for _ in range(2):
        _activate(place_order())
    api.get(LIST)  # the token's last-use stamp is written on the first call
    with django_assert_max_num_queries(12) as first:
        api.get(LIST)
    baseline = len(first.captured_queries)
    for _ in range(4):
        _activate(place_order())
    with django_assert_max_num_queries(baseline):
        assert api.get(LIST).json()["count"] == 6


def test_no_credentials_is_401(api_client, place_order):
    deployment = place_order().deployment
    assert api_client.get(LIST).status_code == 401
    assert api_client.get(_url(deployment.pk)).status_code == 401
    assert api_client.post(_url(deployment.pk, "power"), {"signal": "start"}).status_code == 401


# ---------------------------------------------------------------------- detail


def test_detail_shows_live_state_and_hides_other_customers_servers(
    token_api, customer, other_customer, staff, place_order, panel
):
    d = _activate(place_order())
    panel.get(f"{PANEL}/api/client/servers/{IDENT}/resources", json=client_api_stats("running"))
    body = token_api(customer).get(_url(d.pk)).json()
    assert body["id"] == d.pk
    assert body["panel_identifier"] == IDENT
    assert body["addons"] == d.addons
    assert body["live"]["state"] == "running"
    assert body["live"]["memory_mb"] == 512
    assert body["live"]["pending_signal"] is None
    assert CLIENT_KEY not in str(body)

    other = token_api(other_customer).get(_url(d.pk))
    assert other.status_code == 404
    assert other.json()["code"] == "not_found"
    assert token_api(customer).get(_url(999_999)).status_code == 404
    # Staff read any server.
    assert token_api(staff).get(_url(d.pk)).json()["customer"]["id"] == customer.pk


def test_detail_of_a_server_suspended_for_nonpayment_names_the_invoice(
    token_api, customer, place_order, panel
):
    d = _activate(place_order())
    invoice = Invoice.objects.filter(order__deployment=d).get()
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.UNPAID)
    suspended_at = timezone.now()
    Deployment.objects.filter(pk=d.pk).update(
        status=DeploymentStatus.SUSPENDED, suspension_cause="nonpayment", suspended_at=suspended_at
    )
    body = token_api(customer).get(_url(d.pk)).json()
    assert body["status"] == "suspended"
    assert body["suspension"]["cause"] == "nonpayment"
    assert body["address"] == "203.0.113.7:25565"  # still theirs while suspended
    assert body["renewal"]["state"] == "unpaid"
    assert body["renewal"]["unpaid_invoice"]["number"] == invoice.number
    assert body["live"]["state"] == "suspended"
    assert len(panel.calls) == 0  # a suspended server's state is ours, not the panel's


def test_terminated_server_shows_no_address_and_has_ended(token_api, customer, place_order):
    d = _activate(place_order())
    Deployment.objects.filter(pk=d.pk).update(
        status=DeploymentStatus.TERMINATED, terminated_at=timezone.now()
    )
    body = token_api(customer).get(_url(d.pk)).json()
    assert body["address"] == ""
    assert body["renewal"]["state"] == "ended"
    assert body["live"] is None


# ---------------------------------------------------------------------- power


def test_power_says_updating_until_the_panel_agrees(token_api, customer, place_order, panel):
    d = _activate(place_order())
    resources = f"{PANEL}/api/client/servers/{IDENT}/resources"
    panel.get(resources, json=client_api_stats("running"))
    panel.post(f"{PANEL}/api/client/servers/{IDENT}/power", status=204)
    api = token_api(customer, "write")

    response = api.post(_url(d.pk, "power"), {"signal": "stop"}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["signal"] == "stop"
    assert body["live"]["state"] == "updating"
    assert body["live"]["panel_state"] == "running"
    assert body["live"]["expected_state"] == "offline"
    assert PowerAction.objects.filter(deployment=d, signal="stop", actor=customer).count() == 1
    assert d.events.filter(reason="Power: stop").count() == 1

    assert api.get(_url(d.pk)).json()["live"]["state"] == "updating"
    panel.replace(responses.GET, resources, json=client_api_stats("offline", uptime_ms=0))
    assert api.get(_url(d.pk)).json()["live"]["state"] == "offline"


def test_power_refusals(token_api, customer, other_customer, place_order, panel):
    d = _activate(place_order())
    pending = place_order().deployment
    before = _state()

    read_only = token_api(customer).post(_url(d.pk, "power"), {"signal": "start"}, format="json")
    assert read_only.status_code == 403
    assert "write" in read_only.json()["message"]

    write = token_api(customer, "write")
    kill = write.post(_url(d.pk, "power"), {"signal": "kill"}, format="json")
    assert kill.status_code == 400
    assert "signal" in kill.json()["extra"]["fields"]

    not_live = write.post(_url(pending.pk, "power"), {"signal": "start"}, format="json")
    assert not_live.status_code == 409
    assert not_live.json()["code"] == "invalid_state"

    theirs = token_api(other_customer, "write").post(
        _url(d.pk, "power"), {"signal": "start"}, format="json"
    )
    assert theirs.status_code == 404
    assert _state() == before
    assert len(panel.calls) == 0


def test_power_is_rate_limited_by_the_service(token_api, customer, place_order, panel):
    d = _activate(place_order())
    panel.get(f"{PANEL}/api/client/servers/{IDENT}/resources", json=client_api_stats("running"))
    panel.post(f"{PANEL}/api/client/servers/{IDENT}/power", status=204)
    api = token_api(customer, "write")
    codes = [
        api.post(_url(d.pk, "power"), {"signal": "restart"}, format="json").status_code
        for _ in range(6)
    ]
    assert codes == [202] * 5 + [409]
    assert PowerAction.objects.filter(deployment=d).count() == 5


# ---------------------------------------------------------------------- login


def test_login_is_sent_by_message_never_in_the_response(live, token_api, customer, settings):
    settings.CREDENTIALS_RESEND_LIMIT = 2
    api = token_api(customer, "write")
    response = api.post(_url(live.pk, "login"))
    assert response.status_code == 202
    assert response.json() == {"sent": True, "channels": ["email"]}
    password = live.customer.panel_account.password
    assert password
    assert password not in response.content.decode()
    assert (
        Delivery.objects.filter(
            user=customer, event="credentials_resent", event_key__contains=f"deployment-{live.pk}:"
        ).count()
        == 1
    )
    assert live.events.filter(reason="Login details sent again on request").count() == 1

    assert api.post(_url(live.pk, "login")).status_code == 202
    limited = api.post(_url(live.pk, "login"))
    assert limited.status_code == 409
    assert limited.json()["code"] == "rate_limited"


def test_login_refusals(token_api, customer, other_customer, staff, place_order):
    d = _activate(place_order())
    pending = place_order().deployment
    before = (_state(), Delivery.objects.count())
    assert token_api(customer).post(_url(d.pk, "login")).status_code == 403  # read-only
    assert token_api(other_customer, "write").post(_url(d.pk, "login")).status_code == 404
    # Staff ask for their own logins only: another customer's server is not theirs to send.
    assert token_api(staff, "write").post(_url(d.pk, "login")).status_code == 404
    not_live = token_api(customer, "write").post(_url(pending.pk, "login"))
    assert not_live.status_code == 409
    no_account = token_api(customer, "write").post(_url(d.pk, "login"))
    assert no_account.status_code == 409
    assert no_account.json()["code"] == "no_panel_user"
    assert (_state(), Delivery.objects.count()) == before


# ---------------------------------------------------------------------- staff actions


def test_staff_suspend_unsuspend_terminate_with_the_admins_services(live, token_api, staff, saga):  # noqa: F811
    api = token_api(staff, "provisioning")
    label = f"staff:{staff.username} (token {api.token.prefix})"

    response = api.post(_url(live.pk, "suspend"), {"reason": "Abuse report 7"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "suspended"
    assert body["suspension"]["cause"] == "staff"
    assert body["panel_verified"] is True
    assert saga.panel.servers[live.panel_server_id].status == "suspended"
    event = live.events.order_by("-id").first()
    assert (event.to_status, event.actor_label) == ("suspended", label)
    assert event.reason.startswith("Abuse report 7; verified suspended")

    again = api.post(_url(live.pk, "suspend"), {}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_state"
    assert "suspended" in again.json()["message"]

    response = api.post(_url(live.pk, "unsuspend"), {}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    assert saga.panel.servers[live.panel_server_id].status != "suspended"
    event = live.events.order_by("-id").first()
    assert (event.to_status, event.actor_label) == ("active", label)
    assert event.reason.startswith("Unsuspended by staff")

    response = api.post(_url(live.pk, "terminate"), {"reason": "Chargeback"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "terminated"
    assert response.json()["address"] == ""
    assert live.panel_server_id not in saga.panel.servers
    assert api.post(_url(live.pk, "terminate"), {}, format="json").status_code == 409
    assert api.post(_url(999_999, "suspend"), {}, format="json").status_code == 404


def test_staff_actions_refused_without_the_scope_or_staff(
    live,
    token_api,
    staff,
    customer,
    saga,  # noqa: F811
):
    before = _state()
    calls = len(saga.sim.calls)
    for action, payload in (
        ("suspend", {"reason": "x"}),
        ("unsuspend", {}),
        ("terminate", {}),
        ("change-plan", {"plan": "silver"}),
    ):
        staff_read = token_api(staff).post(_url(live.pk, action), payload, format="json")
        assert staff_read.status_code == 403, action
        assert "scope" in staff_read.json()["message"]
        for scopes in ((), ("write",)):
            as_customer = token_api(customer, *scopes).post(
                _url(live.pk, action), payload, format="json"
            )
            assert as_customer.status_code == 403, (action, scopes)
    # The other staff scope does not stand in for the one a route needs.
    billing_only = token_api(staff, "billing").post(_url(live.pk, "suspend"), {}, format="json")
    assert billing_only.status_code == 403
    provisioning_only = token_api(staff, "provisioning").post(
        _url(live.pk, "change-plan"), {"plan": "silver"}, format="json"
    )
    assert provisioning_only.status_code == 403
    assert _state() == before
    assert len(saga.sim.calls) == calls


def test_staff_change_plan_applies_it_on_the_panel(live, token_api, staff, saga):  # noqa: F811
    api = token_api(staff, "billing")
    response = api.post(_url(live.pk, "change-plan"), {"plan": "silver"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["plan"]["slug"] == "silver"
    live.refresh_from_db()
    assert body["limits"]["memory_mb"] == live.spec["limits"]["memory"]
    assert saga.panel.servers[live.panel_server_id].memory == live.spec["limits"]["memory"]
    event = live.events.order_by("-id").first()
    assert event.actor_label == f"staff:{staff.username} (token {api.token.prefix})"
    assert "Plan changed from Bronze to Silver" in event.reason

    unknown = api.post(_url(live.pk, "change-plan"), {"plan": "nope"}, format="json")
    assert unknown.status_code == 400
    assert "plan" in unknown.json()["extra"]["fields"]
    other_kind = api.post(_url(live.pk, "change-plan"), {"plan": "pro"}, format="json")
    assert other_kind.status_code == 422
    assert other_kind.json()["code"] == "plan_change_not_allowed"
    live.refresh_from_db()
    assert live.plan_slug == "silver"


def test_staff_change_plan_of_a_server_not_live_is_409(token_api, staff, place_order):
    d = place_order().deployment
    before = _state()
    response = token_api(staff, "billing").post(
        _url(d.pk, "change-plan"), {"plan": "silver"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_state"
    assert _state() == before


def test_session_staff_and_the_schema(staff_api, api_client, place_order):
    d = place_order().deployment
    assert staff_api.get(LIST).json()["count"] == 1
    assert staff_api.post(_url(d.pk, "suspend"), {}, format="json").status_code == 409
    schema = api_client.get("/api/schema/").content.decode()
    for path in ("servers/", "power/", "login/", "suspend/", "terminate/", "change-plan/"):
        assert path in schema
