"""Customer web pages: plans -> configure -> review -> pay."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from billing import selectors
from billing.forms import OrderConfigureForm, add_service_errors
from billing.models import BillingCycle
from billing.services.orders import order_place
from billing.services.quotes import order_quote
from common.actors import Actor
from common.errors import ApplicationError, NotFoundError


def plan_list(request: HttpRequest) -> HttpResponse:
    offers = selectors.plan_offers(
        selectors.plan_list_active(currency=settings.BILLING_DEFAULT_CURRENCY)
    )
    return render(request, "billing/plan_list.html", {"offers": offers})


def _configure_form(request: HttpRequest, slug: str, data: dict | None) -> OrderConfigureForm:
    try:
        plan = selectors.plan_get_active(slug=slug)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    addon_choices = []
    addon_names = {}
    for addon, prices in selectors.addon_list_for_plan(
        plan=plan, currency=settings.BILLING_DEFAULT_CURRENCY
    ):
        price_text = ", ".join(f"{p.amount} {p.currency}/{p.billing_cycle}" for p in prices)
        addon_choices.append((addon.slug, f"{addon.name} (+{price_text})"))
        addon_names[addon.slug] = addon.name
    (offer,) = selectors.plan_offers([plan])
    return OrderConfigureForm(
        data,
        plan=plan,
        addon_choices=addon_choices,
        locations=offer.locations,
        currency=settings.BILLING_DEFAULT_CURRENCY,
        addon_names=addon_names,
    )


# The review page's "Change" button: POSTs every choice back to be shown in the form again.
CHANGE_FIELD = "change"


# never_cache: these answers can carry the customer's secret variables (hidden inputs).
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def order_configure(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the form. POST: validate and price it, then show the review page.
    POST with `change`: the review's choices, shown pre-filled in the form again."""
    form = _configure_form(request, slug, request.POST if request.method == "POST" else None)
    changing = request.method == "POST" and CHANGE_FIELD in request.POST
    if request.method == "POST" and not changing and form.is_valid():
        try:
            quote = order_quote(**form.service_arguments(request.user))
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            credit = selectors.credit_balances(customer_id=request.user.pk).get(quote.currency)
            return render(
                request,
                "billing/order_review.html",
                {
                    "form": form,
                    "quote": quote,
                    "change_field": CHANGE_FIELD,
                    "cycle_name": BillingCycle(quote.billing_cycle).label,
                    "idempotency_key": uuid.uuid4().hex,
                    # Spent on the invoice when the order is placed (billing.services.orders).
                    "credit_applied": min(credit, quote.total) if credit else None,
                    "left_to_pay": quote.total - min(credit, quote.total) if credit else None,
                },
            )
    return render(request, "billing/order_configure.html", {"form": form, "plan": form.plan})


@never_cache
@login_required
@require_POST
def order_place_view(request: HttpRequest, slug: str) -> HttpResponse:
    form = _configure_form(request, slug, request.POST)
    if form.is_valid():
        try:
            order = order_place(
                **form.service_arguments(request.user),
                idempotency_key=request.POST.get("idempotency_key", "")[:100],
                actor=Actor.customer(request.user),
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            invoice = order.invoices.order_by("id").first()
            messages.success(
                request,
                _("Order #%(order)s placed. Invoice %(invoice)s is ready.")
                % {"order": order.pk, "invoice": invoice.number},
            )
            return redirect("invoice-detail", invoice_id=invoice.pk)
    return render(request, "billing/order_configure.html", {"form": form, "plan": form.plan})
