"""Live fragments of the dashboard, order and server pages, polled by htmx.

Each page renders its fragment inline; while something is moving (a server being set up, a
power signal taking effect) the fragment carries an `hx-trigger="every Ns"` and asks again.
Once nothing moves, the fragment comes back without the trigger and with status 286 (htmx
stops polling on it). The dashboard and order fragments cost a constant number of queries
whatever the fleet size and never call the panel; only the server page reads live figures
from the panel, at a modest interval.
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from billing import selectors
from billing.models import Invoice, InvoiceStatus, Order, OrderStatus
from provisioning.live import CUSTOMER_SIGNALS, power_pending, server_live_status
from provisioning.progress import SetupProgress, setup_progress_for
from servers.models import Deployment, DeploymentStatus
from servers.selectors import deployment_customer_address, deployment_list_for_customer

# htmx answers 286 "stop polling" (and still swaps the fragment in).
STOP_POLLING = 286
SETUP_POLL_SECONDS = 3
POWER_POLL_SECONDS = 4
STATS_POLL_SECONDS = 15
# A page left open on an unpaid order follows the payment (staff confirming a bank transfer,
# a card webhook) at a gentler pace; the query count stays constant.
PAYMENT_POLL_SECONDS = 10
DASHBOARD_ORDERS = 20
_LIVE = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)


@dataclass(frozen=True)
class ServerView:
    """What the customer may see of one server."""

    deployment: Deployment
    address: str
    progress: SetupProgress | None
    suspension: str  # "", "nonpayment" or "staff"
    pay_invoice: Invoice | None

    @property
    def moving(self) -> bool:
        return self.progress is not None and self.progress.moving

    @property
    def awaiting_payment(self) -> bool:
        return self.status_key == "awaiting_payment"

    @property
    def status_key(self) -> str:
        """The badge's data-status: the deployment status, or the setup stage while paid and
        being set up ("delayed" when it is not going to plan)."""
        d = self.deployment
        if self.progress is not None and d.status in (
            DeploymentStatus.PENDING,
            DeploymentStatus.PROVISIONING,
            DeploymentStatus.FAILED,
        ):
            return "delayed" if self.progress.delayed else self.progress.stage
        if d.status == DeploymentStatus.PENDING:
            return "awaiting_payment"
        return str(d.status)

    @property
    def status_label(self) -> str:
        key = self.status_key
        if self.progress is not None and key in ("delayed", self.progress.stage):
            return self.progress.label
        if key == "awaiting_payment":
            return _("Awaiting payment")
        return str(self.deployment.get_status_display())


@dataclass(frozen=True)
class OrderView:
    order: Order
    setup_key: str
    setup_label: str


def _unpaid_invoices(*, customer: Any, deployment_ids: list[int]) -> dict[int, Invoice]:
    """The oldest unpaid invoice of each of these servers (one query)."""
    if not deployment_ids:
        return {}
    found: dict[int, Invoice] = {}
    invoices = (
        selectors.invoice_list_for_customer(customer=customer)
        .prefetch_related(None)
        .filter(status=InvoiceStatus.UNPAID)
        .filter(Q(deployment_id__in=deployment_ids) | Q(order__deployment_id__in=deployment_ids))
        .select_related("order")
        .order_by("due_date", "id")
    )
    for invoice in invoices:
        key = invoice.deployment_id or (invoice.order.deployment_id if invoice.order else None)
        if key is not None:
            found.setdefault(key, invoice)
    return found


def server_views(*, customer: Any, deployments: list[Deployment]) -> list[ServerView]:
    progress = setup_progress_for(deployments=deployments)
    live = [d.pk for d in deployments if d.status in _LIVE]
    unpaid = _unpaid_invoices(customer=customer, deployment_ids=live)
    return [
        ServerView(
            deployment=d,
            address=deployment_customer_address(deployment=d),
            progress=progress[d.pk],
            suspension=(d.suspension_cause or "staff")
            if d.status == DeploymentStatus.SUSPENDED
            else "",
            pay_invoice=None if d.suspension_cause == "staff" else unpaid.get(d.pk),
        )
        for d in deployments
    ]


def order_view(order: Order, server: ServerView | None) -> OrderView:
    """The order's setup state as it truly is: a confirmed order whose setup failed says so."""
    if order.status in (OrderStatus.PENDING, OrderStatus.CANCELLED):
        return OrderView(order, str(order.status), str(order.get_status_display()))
    if server is not None and server.deployment.status in (
        DeploymentStatus.ACTIVE,
        DeploymentStatus.SUSPENDED,
    ):
        return OrderView(order, "ready", _("Server ready"))
    if server is not None and server.progress is not None:
        key = "delayed" if server.progress.delayed else server.progress.stage
        return OrderView(order, key, server.progress.label)
    return OrderView(order, str(order.status), str(order.get_status_display()))


def dashboard_live_context(request: HttpRequest) -> dict[str, Any]:
    deployments = list(deployment_list_for_customer(customer=request.user))
    servers = server_views(customer=request.user, deployments=deployments)
    by_deployment = {s.deployment.pk: s for s in servers}
    orders = selectors.order_list_for_customer(customer=request.user).prefetch_related(None)
    order_views = [
        order_view(o, by_deployment.get(o.deployment_id)) for o in orders[:DASHBOARD_ORDERS]
    ]
    return {
        "servers": servers,
        "order_views": order_views,
        "poll_seconds": _poll_seconds(servers),
    }


def _poll_seconds(servers: list[ServerView]) -> int | None:
    """Fast while a setup moves, gently while a payment is awaited, not at all otherwise."""
    if any(s.moving for s in servers):
        return SETUP_POLL_SECONDS
    if any(s.awaiting_payment for s in servers):
        return PAYMENT_POLL_SECONDS
    return None


def order_live_context(request: HttpRequest, order: Order) -> dict[str, Any]:
    server = server_views(customer=request.user, deployments=[order.deployment])[0]
    return {
        "order": order,
        "server": server,
        "order_view": order_view(order, server),
        "poll_seconds": None if order.status == OrderStatus.CANCELLED else _poll_seconds([server]),
    }


def server_live_context(request: HttpRequest, deployment: Deployment) -> dict[str, Any]:
    server = server_views(customer=request.user, deployments=[deployment])[0]
    live = server_live_status(deployment=deployment)
    pending = power_pending(deployment=deployment, live=live)
    if server.moving:
        poll: int | None = SETUP_POLL_SECONDS
    elif pending is not None:
        poll = POWER_POLL_SECONDS
    elif deployment.status == DeploymentStatus.ACTIVE:
        poll = STATS_POLL_SECONDS
    else:
        poll = None
    return {
        "deployment": deployment,
        "server": server,
        "live": live,
        "pending_power": pending,
        "signals": CUSTOMER_SIGNALS,
        "panel_url": settings.PTERODACTYL_URL,
        "poll_seconds": poll,
    }


def _fragment(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    status = STOP_POLLING if context["poll_seconds"] is None and request.htmx else 200
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def dashboard_live(request: HttpRequest) -> HttpResponse:
    return _fragment(request, "billing/_live_dashboard.html", dashboard_live_context(request))


@login_required
@require_GET
def order_live(request: HttpRequest, order_id: int) -> HttpResponse:
    order = selectors.order_list_for_customer(customer=request.user).filter(pk=order_id).first()
    if order is None:
        raise Http404("No such order.")
    return _fragment(request, "billing/_live_order.html", order_live_context(request, order))


@login_required
@require_GET
def deployment_live(request: HttpRequest, deployment_id: int) -> HttpResponse:
    deployment = (
        deployment_list_for_customer(customer=request.user).filter(pk=deployment_id).first()
    )
    if deployment is None:
        raise Http404("No such server.")
    return _fragment(request, "billing/_live_server.html", server_live_context(request, deployment))
