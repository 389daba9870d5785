"""What provisioning tells customers and staff. Called inside the transaction that records the
outcome, so a message is queued exactly when the state it describes commits (and once: the
event keys are per deployment or per run)."""

from django.conf import settings
from django.urls import reverse

from notifications.models import Delivery
from notifications.services import notification_send
from provisioning.models import PanelAccount, ProvisioningRun
from servers.models import Deployment


def _order_id(run: ProvisioningRun) -> str:
    return run.request.order_reference.removeprefix("Order #")


def _base(deployment: Deployment) -> dict[str, object]:
    return {
        "package": deployment.plan_name,
        "server_name": deployment.name,
        "duration": deployment.billing_cycle.replace("semiannual", "semi-annual").title(),
    }


def notify_provisioning_started(run: ProvisioningRun) -> None:
    deployment = run.deployment
    notification_send(
        event="provisioning_started",
        user=deployment.customer,
        context={**_base(deployment), "order_id": _order_id(run), "expected_time": "5 minutes"},
        event_key=f"provisioning_started:deployment-{deployment.pk}",
    )


def notify_server_ready(run: ProvisioningRun) -> None:
    notify_deployment_ready(deployment_id=run.deployment_id, order_id=_order_id(run))


def notify_deployment_ready(
    *, deployment_id: int, order_id: str, panel_user_id: int | None = None
) -> None:
    """ "Server ready" with the address, limits and panel login. `panel_user_id` (a server
    linked by hand): the login is only given when our panel account is that server's owner."""
    deployment = Deployment.objects.select_related("customer", "location").get(pk=deployment_id)
    account = PanelAccount.objects.filter(user_id=deployment.customer_id).first()
    if account is not None and panel_user_id is not None and account.panel_user_id != panel_user_id:
        account = None
    limits = deployment.spec.get("limits", {})
    secrets = {}
    if account is not None and account.password:
        secrets["panel_password"] = account.password
    notification_send(
        event="server_ready",
        user=deployment.customer,
        context={
            **_base(deployment),
            "order_id": order_id,
            "status": "Active",
            "panel_url": settings.PTERODACTYL_URL,
            "panel_username": account.username if account else "",
            "panel_login_from_staff": account is None and panel_user_id is not None,
            "server_id": deployment.panel_identifier or str(deployment.panel_server_id),
            "server_address": deployment.connection_address,
            "memory_mb": limits.get("memory", ""),
            "cpu_percent": limits.get("cpu", ""),
            "disk_mb": limits.get("disk", ""),
            "location": str(deployment.location),
        },
        secrets=secrets,
        event_key=f"server_ready:deployment-{deployment.pk}",
    )


def notify_provisioning_failed(run: ProvisioningRun, *, needs_attention: bool = False) -> None:
    deployment = run.deployment
    notification_send(
        event="provisioning_failed",
        user=deployment.customer,
        context={**_base(deployment), "order_id": _order_id(run), "expected_time": "24 hours"},
        event_key=f"provisioning_failed:run-{run.pk}",
    )
    retry_url = settings.PORTAL_BASE_URL.rstrip("/") + reverse(
        "admin:servers_deployment_change", args=[deployment.pk]
    )
    notification_send(
        event="provisioning_failed_staff",
        staff=True,
        context={
            **_base(deployment),
            "order_id": _order_id(run),
            "step": run.failed_step or "rollback",
            "error": ("ROLLBACK INCOMPLETE, check the panel by hand. " if needs_attention else "")
            + run.last_error[:1500],
            "retry_url": retry_url,
            "customer_email": deployment.customer.email,
            "deployment_id": deployment.pk,
            "attempt": run.attempt,
        },
        event_key=f"provisioning_failed:run-{run.pk}",
    )


def notify_server_event(
    deployment: Deployment, *, event: str, reason: str, occurrence: str
) -> None:
    """Suspended, unsuspended or terminated."""
    context: dict[str, object] = {"server_name": deployment.name, "reason": reason}
    if event == "server_unsuspended":
        context = {"server_name": deployment.name, "panel_url": settings.PTERODACTYL_URL}
    notification_send(
        event=event,
        user=deployment.customer,
        context=context,
        event_key=f"{event}:deployment-{deployment.pk}:{occurrence}",
    )


def notify_credentials(
    deployment: Deployment,
    *,
    event: str,
    account: PanelAccount,
    occurrence: str,
    channels: list[str] | None = None,
) -> list[Delivery]:
    """credentials_resent or panel_password_reset, with the password as a secret (`channels`:
    e.g. ["whatsapp"] to answer a WhatsApp "login" where it was asked)."""
    return notification_send(
        event=event,
        channels=channels,
        user=deployment.customer,
        context={
            "server_name": deployment.name,
            "server_id": deployment.panel_identifier or str(deployment.panel_server_id or ""),
            "panel_url": settings.PTERODACTYL_URL,
            "panel_username": account.username,
        },
        secrets={"panel_password": account.password} if account.password else {},
        event_key=f"{event}:deployment-{deployment.pk}:{occurrence}",
    )


def notify_waiting_for_capacity(run: ProvisioningRun) -> None:
    """Paid, but the location is full: the customer hears the truth (kept in the queue, starts
    by itself when room appears), staff get one alert per run with what they can do."""
    deployment = run.deployment
    location = str(deployment.location) if deployment.location_id else "the chosen location"
    order_id = _order_id(run)
    context: dict[str, object] = {**_base(deployment), "order_id": order_id, "location": location}
    if order_id.isascii() and order_id.isdigit():
        context["order_url"] = settings.PORTAL_BASE_URL.rstrip("/") + reverse(
            "order-detail", args=[int(order_id)]
        )
    notification_send(
        event="provisioning_waiting_capacity",
        user=deployment.customer,
        context=context,
        event_key=f"provisioning_waiting_capacity:run-{run.pk}",
    )
    limits = deployment.spec.get("limits", {})
    notification_send(
        event="fleet_alert_staff",
        staff=True,
        context={
            "title": f"Paid order waiting for capacity: {run.request.order_reference}",
            "detail": f"No node in {location} has room for {limits.get('memory')} MB / "
            f"{limits.get('disk')} MB. The order starts by itself when room appears: add "
            'capacity on the panel, or use the order actions "Move waiting order to another '
            'location" or "Cancel and refund".',
            "admin_url": settings.PORTAL_BASE_URL.rstrip("/")
            + reverse("admin:billing_order_changelist")
            + "?waiting_for_capacity=yes",
            "deployment_id": str(deployment.pk),
            "server_name": deployment.name,
            "customer_email": deployment.customer.email,
        },
        event_key=f"waiting_capacity_staff:run-{run.pk}",
    )
