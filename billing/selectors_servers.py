"""Reads behind the servers API (billing.apis_servers): which servers a caller may see, and
what the customer's server page shows of each (address, suspension, renewal state).

The rules are the dashboard's (billing.views.live.server_views, deployment_detail.html): the
address only while the server is the customer's (active or suspended), a suspension without a
recorded cause counts as staff's, the oldest unpaid invoice of a live server is what it waits
for (not for a staff suspension: paying does not lift it). A page of N servers costs a
constant number of queries (the servers, their unpaid invoices, their scheduled cancellations).
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from billing.models import (
    Cancellation,
    CancellationStatus,
    Invoice,
    InvoiceStatus,
    Order,
)
from common.errors import NotFoundError
from notifications.models import Delivery
from servers.models import Deployment, DeploymentStatus
from servers.selectors import deployment_customer_address, deployment_list_for_customer

_LIVE = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)
_ENDED = (DeploymentStatus.TERMINATED, DeploymentStatus.CANCELLED)


class RenewalState:
    """ServerBilling.renewal values (the server page's data-renewal, plus two it words out)."""

    RENEWS = "renews"  # paid until next_due_date, renews then
    UNPAID = "unpaid"  # an invoice of the server is unpaid
    CANCELLING = "cancelling"  # a cancellation is scheduled: it ends on its effective date
    ENDED = "ended"  # terminated or cancelled: it no longer renews
    NOT_STARTED = "not_started"  # the paid period starts when the server is ready


@dataclass(frozen=True)
class Suspension:
    cause: str  # "nonpayment" (paying lifts it) or "staff"
    since: dt.datetime | None


@dataclass(frozen=True)
class ServerBilling:
    """What the customer sees of one server: the page's status, address and billing lines."""

    deployment: Deployment
    address: str
    suspension: Suspension | None  # None unless suspended
    renewal: str  # a RenewalState value
    unpaid_invoice: Invoice | None
    cancellation_effective_on: dt.date | None


def server_list_for_user(*, user: Any) -> QuerySet[Deployment]:
    """Staff (with the view permission, as the admin's list needs it) see every server,
    customers their own; newest first (a stable page order)."""
    if user.is_staff and user.has_perm("servers.view_deployment"):
        servers = Deployment.objects.select_related("location", "node", "customer")
    else:
        servers = deployment_list_for_customer(customer=user).select_related("customer")
    return servers.order_by("-created_at", "-id")


def server_get_for_user(*, user: Any, deployment_id: int) -> Deployment:
    """One server the caller may see; another customer's server does not exist here (404)."""
    deployment = server_list_for_user(user=user).filter(pk=deployment_id).first()
    if deployment is None:
        raise NotFoundError("No such server.")
    return deployment


def _unpaid_invoices(deployment_ids: list[int]) -> dict[int, Invoice]:
    """The oldest unpaid invoice of each server (one query), as the dashboard finds them."""
    if not deployment_ids:
        return {}
    found: dict[int, Invoice] = {}
    invoices = (
        Invoice.objects.filter(status=InvoiceStatus.UNPAID)
        .filter(Q(deployment_id__in=deployment_ids) | Q(order__deployment_id__in=deployment_ids))
        .select_related("order")
        .order_by("due_date", "id")
    )
    for invoice in invoices:
        key = invoice.deployment_id or (invoice.order.deployment_id if invoice.order else None)
        if key is not None:
            found.setdefault(key, invoice)
    return found


def _scheduled_cancellations(deployment_ids: list[int]) -> dict[int, dt.date]:
    if not deployment_ids:
        return {}
    rows = Cancellation.objects.filter(
        deployment_id__in=deployment_ids, status=CancellationStatus.SCHEDULED
    ).values_list("deployment_id", "effective_on")
    return dict(rows)


def server_billing_views(*, deployments: list[Deployment]) -> list[ServerBilling]:
    """Each server with its address, suspension cause and renewal state (two queries)."""
    live = [d.pk for d in deployments if d.status in _LIVE]
    unpaid = _unpaid_invoices(live)
    cancelling = _scheduled_cancellations(live)
    views = []
    for d in deployments:
        suspended = d.status == DeploymentStatus.SUSPENDED
        cause = (d.suspension_cause or "staff") if suspended else ""
        invoice = None if cause == "staff" else unpaid.get(d.pk)
        suspension = Suspension(cause=cause, since=d.suspended_at) if suspended else None
        if d.status in _ENDED:
            renewal = RenewalState.ENDED
        elif invoice is not None:
            renewal = RenewalState.UNPAID
        elif d.pk in cancelling:
            renewal = RenewalState.CANCELLING
        elif d.next_due_date:
            renewal = RenewalState.RENEWS
        else:
            renewal = RenewalState.NOT_STARTED
        views.append(
            ServerBilling(
                deployment=d,
                address=deployment_customer_address(deployment=d),
                suspension=suspension,
                renewal=renewal,
                unpaid_invoice=invoice,
                cancellation_effective_on=cancelling.get(d.pk),
            )
        )
    return views


def server_order(*, deployment_id: int) -> Order | None:
    """The order the server was sold by (staff's plan change applies its add-ons again)."""
    return Order.objects.filter(deployment_id=deployment_id).first()


def credentials_resend_channels(*, deployment: Deployment) -> list[str]:
    """The channels of the newest "login details again" message of this server (its rows
    were just queued by provisioning.operations.credentials_resend), e.g. ["email"]."""
    prefix = f"credentials_resent:deployment-{deployment.pk}:"
    rows = Delivery.objects.filter(
        user_id=deployment.customer_id,
        event="credentials_resent",
        event_key__startswith=prefix,
        fallback_for__isnull=True,
    ).order_by("-created_at", "-id")
    newest = rows.values_list("event_key", flat=True).first()
    if newest is None:
        return []
    return list(rows.filter(event_key=newest).order_by("channel").values_list("channel", flat=True))
