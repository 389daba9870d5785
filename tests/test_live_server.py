"""The customer's server page: live state and usage, and the power buttons (client API)."""

import pytest
from django.urls import reverse

from billing.services.payments import payment_record_manual
from common.actors import Actor
from provisioning.live import POWER_LIMIT_PER_MINUTE
from servers.models import DeploymentStatus


@pytest.fixture
def active(saga, place_order, staff, settings):
    settings.PTERODACTYL_CLIENT_API_KEY = saga.sim.seed.client_api_key
    order = place_order()
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference="R", actor=Actor.staff(staff)
    )
    order.deployment.refresh_from_db()
    assert order.deployment.status == DeploymentStatus.ACTIVE
    return order.deployment


def test_server_page_shows_live_state_and_power_buttons_work(saga, active, customer, client):
    client.force_login(customer)
    url = reverse("deployment-detail", args=[active.pk])
    page = client.get(url).content.decode()
    assert "running" in page  # AUTO_START_SERVERS started it after the install
    assert active.connection_address in page
    assert "Memory in use" in page

    client.post(reverse("deployment-power", args=[active.pk]), {"signal": "stop"})

    server = saga.panel.servers[active.panel_server_id]
    assert server.power_state != "running"
    assert active.events.last().reason == "Power: stop"
    assert active.events.last().actor_label == "customer:alice@example.com"
    page = client.get(url).content.decode()
    assert "Sent stop to your server." in page


def test_power_is_for_the_owner_only_and_rate_limited(
    saga, active, customer, other_customer, client
):
    client.force_login(other_customer)
    assert client.get(reverse("deployment-detail", args=[active.pk])).status_code == 404
    assert (
        client.post(reverse("deployment-power", args=[active.pk]), {"signal": "stop"}).status_code
        == 404
    )

    client.force_login(customer)
    for _ in range(POWER_LIMIT_PER_MINUTE + 1):
        client.post(reverse("deployment-power", args=[active.pk]), {"signal": "restart"})
    assert active.events.filter(reason="Power: restart").count() == POWER_LIMIT_PER_MINUTE
    response = client.post(
        reverse("deployment-power", args=[active.pk]), {"signal": "kill"}, follow=True
    )
    assert "Choose start, stop, restart" in response.content.decode()


def test_panel_down_shows_a_readable_message(saga, active, customer, client):
    saga.fault("status", method="GET", path=r"/resources$", status=502, times=None, body="html")
    client.force_login(customer)
    page = client.get(reverse("deployment-detail", args=[active.pk])).content.decode()
    assert "The panel is not answering right now" in page


def test_suspended_server_has_no_power_buttons(saga, active, customer, client, staff):
    from provisioning.operations import deployment_suspend

    deployment_suspend(deployment_id=active.pk, actor=Actor.staff(staff), reason="unpaid")
    client.force_login(customer)
    page = client.get(reverse("deployment-detail", args=[active.pk])).content.decode()
    assert 'name="signal"' not in page
    response = client.post(
        reverse("deployment-power", args=[active.pk]), {"signal": "start"}, follow=True
    )
    assert "cannot be started now" in response.content.decode()


def test_the_power_limit_counts_power_actions_not_history_wording(
    saga, active, customer, client, staff
):
    """A history row that happens to start with "Power: " (a staff note, an import) neither
    uses up the customer's power buttons nor counts as their last power action."""
    from servers.health import deployments_last_power_action
    from servers.services import deployment_record

    for _ in range(POWER_LIMIT_PER_MINUTE):
        deployment_record(
            deployment_id=active.pk, actor=Actor.staff(staff), reason="Power: restart requested"
        )
    assert deployments_last_power_action(deployment_ids=[active.pk]) == {}

    client.force_login(customer)
    page = client.post(
        reverse("deployment-power", args=[active.pk]), {"signal": "stop"}, follow=True
    )

    assert "Sent stop to your server." in page.content.decode()
    assert active.power_actions.get().signal == "stop"
    assert deployments_last_power_action(deployment_ids=[active.pk]) == {active.pk: "stop"}
