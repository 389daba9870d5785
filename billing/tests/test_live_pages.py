"""Live dashboard, order and server pages: htmx fragments per state, polling that stops once
settled, constant queries over the fleet, ownership and no secrets (billing.views.live)."""

import datetime as dt
import re

import pytest
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import InvoiceStatus, OrderStatus
from billing.services.orders import order_cancel
from common.actors import Actor
from provisioning.models import (
    ProvisioningRequest,
    ProvisioningRequestStatus,
    ProvisioningRun,
    ProvisioningStepAttempt,
    RunStatus,
    StepAttemptStatus,
    StepDirection,
)
from provisioning.pterodactyl.transport import shared_limiters_reset
from provisioning.saga.steps import STEP_NAMES
from servers.models import DeploymentStatus
from tests.support import client_api_stats

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
SECRET = "ptlc_SECRETclientKEY0123456789abcdefghijkl"
PANEL = "https://panel.test"
IDENT = "abcd1234"


@pytest.fixture
def order(place_order):
    return place_order()


def _confirm(order):
    order.status = OrderStatus.CONFIRMED
    order.confirmed_at = timezone.now()
    order.save(update_fields=["status", "confirmed_at"])


def _provisioning(order, *, step="server", run_status=RunStatus.RUNNING, attempt_status=None):
    _confirm(order)
    d = order.deployment
    request = ProvisioningRequest.objects.create(
        deployment=d,
        order_reference=f"ORD-{order.pk}",
        requested_by="test",
        status=ProvisioningRequestStatus.IN_PROGRESS,
    )
    now = timezone.now()
    run = ProvisioningRun.objects.create(
        request=request,
        deployment=d,
        status=run_status,
        step_index=STEP_NAMES.index(step),
        deadline_at=now + dt.timedelta(hours=1),
        started_at=now,
        triggered_by="test",
        last_error=f"panel 500 with key {SECRET}",
    )
    ProvisioningStepAttempt.objects.create(
        run=run,
        step=step,
        direction=StepDirection.FORWARD,
        attempt=1,
        fence=1,
        status=attempt_status or StepAttemptStatus.RUNNING,
        started_at=now,
        error=f"Traceback ... {SECRET}",
    )
    d.status = DeploymentStatus.PROVISIONING
    d.save(update_fields=["status"])
    return d


def _activate(order, *, server_id=None, port=25565):
    _confirm(order)
    d = order.deployment
    d.status = DeploymentStatus.ACTIVE
    d.panel_server_id = server_id or 1000 + d.pk
    d.panel_identifier = IDENT
    d.ip_address = "203.0.113.7"
    d.port = port
    d.next_due_date = dt.date(2030, 1, 31)
    d.save()
    return d


def _polls(html, element_id):
    tag = re.search(rf'<div id="{element_id}"[^>]*>', html).group(0)
    return "hx-trigger=" in tag


def test_dashboard_polls_while_setting_up_and_stops_once_active(order, customer, client):
    client.force_login(customer)
    d = _provisioning(order, step="install")
    page = client.get(reverse("dashboard")).content.decode()
    assert _polls(page, "live-dashboard")
    assert 'data-status="installing"' in page
    assert "htmx" in page
    assert "js/live.js" in page

    response = client.get(reverse("dashboard-live"), **HX)
    assert response.status_code == 200
    assert _polls(response.content.decode(), "live-dashboard")

    _activate(order)
    response = client.get(reverse("dashboard-live"), **HX)
    html = response.content.decode()
    assert response.status_code == 286  # htmx: stop polling
    assert not _polls(html, "live-dashboard")
    assert 'data-status="active"' in html
    assert d.connection_address in html
    assert SECRET not in html
    assert "Traceback" not in html


def test_unpaid_order_polls_gently_until_paid_and_a_cancelled_one_stops(order, customer, client):
    client.force_login(customer)
    response = client.get(reverse("dashboard-live"), **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-status="awaiting_payment"' in html
    assert 'hx-trigger="every 10s"' in html  # a staff confirmation shows up without a reload

    order_cancel(order_id=order.pk, actor=Actor.customer(customer), reason="test")
    response = client.get(reverse("order-live", args=[order.pk]), **HX)
    assert response.status_code == 286
    assert not _polls(response.content.decode(), "live-order")


def test_failed_setup_shows_the_order_truthfully(order, customer, client):
    _provisioning(
        order, step="install", run_status=RunStatus.FAILED, attempt_status=StepAttemptStatus.FAILED
    )
    d = order.deployment
    d.status = DeploymentStatus.FAILED
    d.save(update_fields=["status"])
    client.force_login(customer)
    page = client.get(reverse("order-detail", args=[order.pk])).content.decode()
    assert 'id="order-status"' in page
    assert re.search(r'id="order-status" data-status="delayed"', page)
    assert "Delayed: we are on it" in page
    assert ">Confirmed<" not in page
    assert SECRET not in page
    assert "Traceback" not in page
    assert "panel 500" not in page
    dash = client.get(reverse("dashboard-live"), **HX).content.decode()
    assert f'id="order-row-{order.pk}"' in dash
    assert 'data-status="delayed"' in dash
    assert ">Confirmed<" not in dash


def test_order_page_shows_each_step_and_polls(order, customer, client):
    _provisioning(order, step="panel_user")
    client.force_login(customer)
    response = client.get(reverse("order-live", args=[order.pk]), **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert _polls(html, "live-order")
    assert 'data-stage="account"' in html
    assert 'data-step="queued" data-state="done"' in html
    assert 'data-step="account" data-state="current"' in html
    assert 'data-step="installing" data-state="todo"' in html


def test_suspended_for_non_payment_links_to_the_unpaid_invoice(order, customer, client):
    d = _activate(order)
    invoice = order.invoices.get()
    assert invoice.status == InvoiceStatus.UNPAID
    d.status = DeploymentStatus.SUSPENDED
    d.suspension_cause = "nonpayment"
    d.suspended_at = timezone.now()
    d.save()
    client.force_login(customer)
    page = client.get(reverse("deployment-detail", args=[d.pk])).content.decode()
    assert 'data-reason="nonpayment"' in page
    assert f'href="{reverse("invoice-detail", args=[invoice.pk])}"' in page
    assert f'data-pay-link="{invoice.pk}"' in page
    assert "busy (installing or suspended)" not in page
    response = client.get(reverse("deployment-live", args=[d.pk]), **HX)
    assert response.status_code == 286
    dash = client.get(reverse("dashboard-live"), **HX).content.decode()
    assert f'data-pay-link="{invoice.pk}"' in dash


def test_staff_suspension_says_contact_us_without_a_pay_link(order, customer, client):
    d = _activate(order)
    d.status = DeploymentStatus.SUSPENDED
    d.suspension_cause = "staff"
    d.save()
    client.force_login(customer)
    page = client.get(reverse("deployment-detail", args=[d.pk])).content.decode()
    assert 'data-reason="staff"' in page
    assert "mailto:" in page
    assert "Contact us" in page
    assert "data-pay-link" not in page


def test_terminated_server_shows_no_address(order, customer, client):
    d = _activate(order)
    d.status = DeploymentStatus.TERMINATED
    d.terminated_at = timezone.now()
    d.save()
    client.force_login(customer)
    address = "203.0.113.7:25565"
    for url in (
        reverse("deployment-detail", args=[d.pk]),
        reverse("deployment-live", args=[d.pk]),
        reverse("dashboard"),
        reverse("order-detail", args=[order.pk]),
    ):
        html = client.get(url).content.decode()
        assert address not in html, url
    assert (
        'data-renewal="ended"'
        in client.get(reverse("deployment-detail", args=[d.pk])).content.decode()
    )


def test_other_customers_fragments_are_404(order, other_customer, client):
    d = _activate(order)
    client.force_login(other_customer)
    assert client.get(reverse("order-live", args=[order.pk]), **HX).status_code == 404
    assert client.get(reverse("deployment-live", args=[d.pk]), **HX).status_code == 404
    html = client.get(reverse("dashboard-live"), **HX).content.decode()
    assert d.name not in html
    assert d.connection_address not in html


def test_fragments_need_a_login(order, client):
    response = client.get(reverse("dashboard-live"), **HX)
    # htmx takes the whole page to the login (HX-Redirect), not the login into the fragment.
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/accounts/login/")
    assert b"dashboard" not in response.content


def _dashboard_queries(client):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("dashboard-live"), **HX).status_code in (200, 286)
    return len(ctx)


def test_dashboard_fragment_queries_do_not_grow_with_the_fleet(
    place_order, customer, client, django_assert_max_num_queries
):
    client.force_login(customer)

    def fleet(start, count):
        for i in range(start, start + count):
            o = place_order(server_name=f"srv-{i}")
            if i % 3 == 0:
                _provisioning(o, step="install")
            else:
                d = _activate(o, port=25000 + i)
                if i % 3 == 2:
                    d.status = DeploymentStatus.SUSPENDED
                    d.suspension_cause = "nonpayment"
                    d.save()

    fleet(0, 3)  # one of each: being set up, active, suspended for non-payment
    _dashboard_queries(client)  # the session's first stamps are written here
    baseline = _dashboard_queries(client)
    fleet(3, 9)
    with django_assert_max_num_queries(baseline):
        response = client.get(reverse("dashboard-live"), **HX)
    assert response.status_code == 200
    assert response.content.decode().count('id="server-row-') == 12


@pytest.fixture
def panel(settings):
    settings.PTERODACTYL_URL = PANEL
    settings.PTERODACTYL_CLIENT_API_KEY = SECRET
    settings.PTERODACTYL_RATE_LIMIT_REDIS_URL = None
    shared_limiters_reset()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def test_power_stop_says_updating_until_the_panel_reports_offline(order, customer, client, panel):
    d = _activate(order)
    resources = f"{PANEL}/api/client/servers/{IDENT}/resources"
    panel.get(resources, json=client_api_stats("running"))
    panel.post(f"{PANEL}/api/client/servers/{IDENT}/power", status=204)
    client.force_login(customer)

    page = client.get(reverse("deployment-detail", args=[d.pk])).content.decode()
    assert 'id="power-state" data-state="running"' in page
    assert f'href="{PANEL}"' in page
    assert 'id="open-panel"' in page
    assert "15s" in re.search(r'<div id="live-server"[^>]*>', page).group(0)

    response = client.post(reverse("deployment-power", args=[d.pk]), {"signal": "stop"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-state="updating"' in html
    assert 'data-expected="offline"' in html
    assert 'data-power-pending="stop"' in html
    assert "every 4s" in html  # polls faster while the state moves
    assert "Sent stop to your server." in html
    assert panel.calls[-2].request.url.endswith("/power")

    # The panel's cached figures still say running: still updating.
    html = client.get(reverse("deployment-live", args=[d.pk]), **HX).content.decode()
    assert 'data-state="updating"' in html

    panel.replace(responses.GET, resources, json=client_api_stats("offline", uptime_ms=0))
    response = client.get(reverse("deployment-live", args=[d.pk]), **HX)
    html = response.content.decode()
    assert 'id="power-state" data-state="offline"' in html
    assert 'data-power-pending=""' in html
    assert "every 15s" in html
    for page_html in (page, html):
        assert SECRET not in page_html
    assert d.events.filter(reason="Power: stop").count() == 1


def test_provisioning_server_page_never_calls_the_panel(order, customer, client, panel):
    d = _provisioning(order, step="install")
    client.force_login(customer)
    response = client.get(reverse("deployment-live", args=[d.pk]), **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "every 3s" in html
    assert 'data-stage="installing"' in html
    assert len(panel.calls) == 0
    assert SECRET not in html
    assert "Traceback" not in html
