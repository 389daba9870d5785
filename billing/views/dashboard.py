"""The customer's dashboard: orders, invoices, servers; paying an invoice."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from billing import selectors
from billing.invoice_documents import invoice_pdf
from billing.models import Invoice, Order
from billing.services.orders import order_cancel
from billing.services.stripe_payments import checkout_session_start
from billing.views import live
from common.actors import Actor
from common.errors import ApplicationError, NotFoundError
from provisioning.live import server_power_signal
from provisioning.operations import credentials_resend
from servers.models import Deployment
from servers.selectors import deployment_list_for_customer


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "billing/dashboard.html",
        {
            **live.dashboard_live_context(request),
            "invoices": selectors.invoice_list_for_customer(customer=request.user)[:20],
            "credit_balances": selectors.credit_balances(customer_id=request.user.pk),
        },
    )


@login_required
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _own_order(request, order_id)
    return render(request, "billing/order_detail.html", live.order_live_context(request, order))


@login_required
@require_POST
def order_cancel_view(request: HttpRequest, order_id: int) -> HttpResponse:
    try:
        order = selectors.order_get_for_customer(order_id=order_id, customer=request.user)
        order_cancel(order_id=order.pk, actor=Actor.customer(request.user), reason="By customer")
        messages.success(request, f"Order #{order.pk} cancelled.")
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("order-detail", order_id=order_id)


@login_required
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = _own_invoice(request, invoice_id)
    return render(
        request,
        "billing/invoice_detail.html",
        {
            "invoice": invoice,
            "card_payments": bool(settings.STRIPE_SECRET_KEY),
            "bank_instructions": settings.BILLING_BANK_TRANSFER_INSTRUCTIONS,
        },
    )


@login_required
def invoice_pdf_view(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """The invoice as a PDF download (the customer's own invoices only: 404 otherwise)."""
    invoice = _own_invoice(request, invoice_id)
    response = HttpResponse(invoice_pdf(invoice_id=invoice.pk), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def invoice_pay_card(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """Send the customer to Stripe Checkout for this invoice."""
    detail_url = request.build_absolute_uri(reverse("invoice-detail", args=[invoice_id]))
    try:
        session = checkout_session_start(
            invoice_id=invoice_id,
            customer=request.user,
            success_url=f"{detail_url}?paid=1",
            cancel_url=detail_url,
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("invoice-detail", invoice_id=invoice_id)
    return redirect(session.url)


@login_required
@require_POST
def deployment_resend_login(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """Send the panel login again (rate limited) through the normal message path."""
    try:
        credentials_resend(deployment_id=deployment_id, user=request.user)
        messages.success(request, "Your login details are on their way.")
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard")


@login_required
def deployment_detail(request: HttpRequest, deployment_id: int) -> HttpResponse:
    deployment = own_deployment(request, deployment_id)
    return render(
        request, "billing/deployment_detail.html", live.server_live_context(request, deployment)
    )


@login_required
@require_POST
def deployment_power(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """A power signal; from htmx, answered with the server's live fragment (which then shows
    "updating" and polls until the panel reports the new state), else a redirect."""
    signal = request.POST.get("signal", "")
    notice, failed = "", False
    try:
        server_power_signal(deployment_id=deployment_id, user=request.user, signal=signal)
        notice = _("Sent %(signal)s to your server.") % {"signal": signal}
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        notice, failed = exc.message, True
    if request.htmx:
        deployment = own_deployment(request, deployment_id)
        context = live.server_live_context(request, deployment)
        context.update(notice=notice, notice_failed=failed)
        return render(request, "billing/_live_server.html", context)
    (messages.error if failed else messages.success)(request, notice)
    return redirect("deployment-detail", deployment_id=deployment_id)


def own_deployment(request: HttpRequest, deployment_id: int) -> Deployment:
    """The signed-in customer's server, or 404 (another customer's server does not exist
    here); the server page, plan changes and cancellations share it."""
    deployment = (
        deployment_list_for_customer(customer=request.user).filter(pk=deployment_id).first()
    )
    if deployment is None:
        raise Http404("No such server.")
    return deployment


def _own_order(request: HttpRequest, order_id: int) -> Order:
    """The signed-in customer's order, or 404 (another customer's order does not exist here)."""
    try:
        return selectors.order_get_for_customer(order_id=order_id, customer=request.user)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def _own_invoice(request: HttpRequest, invoice_id: int) -> Invoice:
    try:
        return selectors.invoice_get_for_customer(invoice_id=invoice_id, customer=request.user)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
