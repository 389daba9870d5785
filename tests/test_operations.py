"""Staff operations on provisioned servers, the commands and the admin, against the simulator."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import OrderStatus
from billing.services.payments import payment_record_manual
from common.actors import Actor
from common.errors import ConflictError
from provisioning import operations
from provisioning.models import PanelAccount, ProvisioningRun
from servers.models import DeploymentStatus


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def active(saga, place_order, staff):
    order = place_order()
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference="R", actor=Actor.staff(staff)
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    return order.deployment


def test_suspend_unsuspend_terminate(saga, active, staff):
    actor = Actor.staff(staff)
    server = saga.panel.servers[active.panel_server_id]

    operations.deployment_suspend(deployment_id=active.pk, actor=actor, reason="unpaid")
    assert server.status == "suspended"
    active.refresh_from_db()
    assert active.status == DeploymentStatus.SUSPENDED
    with pytest.raises(ConflictError):
        operations.deployment_suspend(deployment_id=active.pk, actor=actor, reason="again")

    operations.deployment_unsuspend(deployment_id=active.pk, actor=actor, reason="paid")
    assert server.status is None
    active.refresh_from_db()
    assert active.status == DeploymentStatus.ACTIVE

    operations.deployment_terminate(deployment_id=active.pk, actor=actor, reason="cancelled")
    assert active.panel_server_id not in saga.panel.servers
    assert len(saga.panel.users) == 2  # the customer's panel user went with its only server
    active.refresh_from_db()
    assert active.status == DeploymentStatus.TERMINATED
    labels = [(e.from_status, e.to_status, e.actor_label) for e in active.events.all()][-3:]
    assert labels == [
        ("active", "suspended", "staff:staff@example.com"),
        ("suspended", "active", "staff:staff@example.com"),
        ("active", "terminated", "staff:staff@example.com"),
    ]
    from notifications.models import Delivery

    told = Delivery.objects.filter(event__startswith="server_").exclude(event="server_ready")
    assert sorted(told.values_list("event", flat=True)) == [
        "server_suspended",
        "server_terminated",
        "server_unsuspended",
    ]


def test_change_plan_applies_and_reads_back(saga, active, staff, catalog):
    from billing.catalog import plan_panel_spec
    from billing.models import Plan

    gold = Plan.objects.get(slug="gold")
    operations.deployment_change_build(
        deployment_id=active.pk,
        spec=plan_panel_spec(gold),
        plan_slug="gold",
        plan_name="Gold",
        actor=Actor.staff(staff),
    )

    server = saga.panel.servers[active.panel_server_id]
    assert (server.memory, server.cpu, server.disk) == (4096, 400, 20480)
    active.refresh_from_db()
    assert active.plan_name == "Gold"
    assert active.spec["limits"]["memory"] == 4096
    assert "read back as 4096 MB" in active.events.last().reason


def test_reset_panel_password_changes_it_on_the_panel(saga, active, staff, customer, caplog):
    old = PanelAccount.objects.get(user=customer).password
    new = operations.panel_password_reset(deployment_id=active.pk, actor=Actor.staff(staff))
    assert new != old
    assert PanelAccount.objects.get(user=customer).password == new
    assert len(new) >= 16
    assert new not in caplog.text
    assert "Panel password reset" in active.events.last().reason
    from notifications.models import Delivery

    reset = Delivery.objects.get(event="panel_password_reset")
    assert new not in reset.body


def test_password_of_an_adopted_panel_user_is_not_reset(saga, place_order, staff, user_factory):
    saga.panel.add_user(
        username="olduser",
        email="old@example.com",
        first_name="Old",
        last_name="User",
        root_admin=False,
    )
    customer = user_factory(username="old@example.com")
    order = place_order(customer=customer, actor=Actor.customer(customer))
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference="R", actor=Actor.staff(staff)
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    account = PanelAccount.objects.get(user=customer)
    assert account.created_by_portal is False
    assert not account.password

    with pytest.raises(ConflictError, match="not ours to change"):
        operations.panel_password_reset(deployment_id=order.deployment_id, actor=Actor.staff(staff))


def test_panel_failure_is_a_clear_error_and_changes_nothing(saga, active, staff):
    saga.fault("status", method="POST", path=r"/suspend$", status=500, times=None)
    with pytest.raises(operations.PanelOperationFailed, match="refused to suspend"):
        operations.deployment_suspend(deployment_id=active.pk, actor=Actor.staff(staff), reason="x")
    active.refresh_from_db()
    assert active.status == DeploymentStatus.ACTIVE


def test_commands_status_detail_plan_and_retry(saga, place_order, staff, settings):
    saga.panel.eggs[1].fail_install = True
    order = place_order()
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference="R", actor=Actor.staff(staff)
    )

    status = run("provision_status")
    assert "last 24 h: 0 succeeded, 1 failed" in status
    assert "install failed" in status

    detail = run("order_detail", str(order.pk))
    assert "run #" in detail
    assert "failed" in detail
    assert "compensate" in detail

    plan = run("order_detail", str(order.pk), "--plan")
    assert "dry run" in plan
    assert '"external_id": "deployment-' in plan
    assert '"SERVER_JARFILE": "server.jar"' in plan
    assert "chose eu-fra-1" in plan
    assert ProvisioningRun.objects.count() == 1  # the dry run changed nothing
    assert len(saga.panel.servers) == 0

    saga.panel.eggs[1].fail_install = False
    out = run("provision_retry", str(order.pk))
    assert "succeeded" in out
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    with pytest.raises(CommandError, match="already provisioned"):
        run("provision_retry", str(order.pk))


def test_admin_actions_and_timeline(saga, active, staff, client):
    client.force_login(staff)
    change = reverse("admin:servers_deployment_change", args=[active.pk])
    page = client.get(change).content.decode()
    assert "Run #" in page
    assert "install" in page

    changelist = reverse("admin:servers_deployment_changelist")
    page = client.post(changelist, {"action": "suspend", "_selected_action": [active.pk]})
    assert b"Yes, stop these servers" in page.content
    active.refresh_from_db()
    assert active.status == DeploymentStatus.ACTIVE  # nothing without confirmation
    client.post(
        changelist,
        {
            "action": "suspend",
            "_selected_action": [active.pk],
            "apply": "1",
            "reason": "Abuse report #12",
            "confirm": "on",
        },
    )
    active.refresh_from_db()
    assert active.status == DeploymentStatus.SUSPENDED
    assert active.events.last().reason == "Abuse report #12; verified suspended on the panel"

    confirm = client.post(changelist, {"action": "terminate", "_selected_action": [active.pk]})
    assert b"Yes, delete the server" in confirm.content
    active.refresh_from_db()
    assert active.status == DeploymentStatus.SUSPENDED  # nothing without confirmation
    client.post(
        changelist,
        {
            "action": "terminate",
            "_selected_action": [active.pk],
            "apply": "1",
            "reason": "Abuse",
            "confirm": "on",
        },
    )
    active.refresh_from_db()
    assert active.status == DeploymentStatus.TERMINATED
    assert active.events.last().actor_label == "staff:staff@example.com"

    order_page = client.get(reverse("admin:billing_order_change", args=[active.order.pk]))
    assert b"Run #" in order_page.content
    account_page = client.get(reverse("admin:provisioning_panelaccount_changelist"))
    assert account_page.status_code == 200
    password = PanelAccount.objects.get().password
    assert password.encode() not in account_page.content


def test_customer_can_ask_for_login_again_rate_limited(saga, active, customer, client, settings):
    from notifications.models import Delivery

    settings.CREDENTIALS_RESEND_LIMIT = 2
    client.force_login(customer)
    url = reverse("deployment-resend-login", args=[active.pk])
    assert b"Send my login again" in client.get(reverse("dashboard")).content

    for _ in range(3):
        client.post(url)

    sent = Delivery.objects.filter(event="credentials_resent", user=customer)
    assert sent.count() == 2  # the third request was refused
    page = client.get(reverse("dashboard")).content.decode()
    assert "several times recently" in page
    password = PanelAccount.objects.get(user=customer).password
    assert not sent.filter(body__contains=password).exists()


def test_other_customers_cannot_request_someone_elses_login(saga, active, other_customer, client):
    client.force_login(other_customer)
    response = client.post(reverse("deployment-resend-login", args=[active.pk]))
    assert response.status_code == 404


def test_admin_retry_from_step_and_reset_password_ask_first(saga, place_order, staff, client):
    saga.panel.eggs[1].fail_install = True
    order = place_order()
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference="R", actor=Actor.staff(staff)
    )
    saga.panel.eggs[1].fail_install = False
    client.force_login(staff)
    changelist = reverse("admin:servers_deployment_changelist")
    ids = [order.deployment_id]

    page = client.post(changelist, {"action": "retry_from_step", "_selected_action": ids})
    assert b"Retry provisioning from a step" in page.content
    assert ProvisioningRun.objects.count() == 1
    client.post(
        changelist,
        {"action": "retry_from_step", "_selected_action": ids, "apply": "1", "step": "check"},
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED

    before = PanelAccount.objects.get().password
    page = client.post(changelist, {"action": "reset_panel_password", "_selected_action": ids})
    assert b"send them the new login" in page.content
    assert PanelAccount.objects.get().password == before
    client.post(
        changelist,
        {"action": "reset_panel_password", "_selected_action": ids, "apply": "1", "confirm": "on"},
    )
    assert PanelAccount.objects.get().password != before
