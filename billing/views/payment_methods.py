"""The customer's saved cards: list, add (Stripe's setup page), make default, remove."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from billing.services.autocharge import (
    card_expiry,
    card_label,
    payment_method_list_for_customer,
    payment_method_make_default,
    payment_method_remove,
    payment_method_setup_start,
)
from common.actors import Actor
from common.errors import ApplicationError, NotFoundError

_SETUP_MESSAGES = {
    "done": (
        messages.SUCCESS,
        gettext_lazy("Thank you: your card is being saved and shows here in a moment."),
    ),
    "cancelled": (messages.INFO, gettext_lazy("No card was added.")),
}


@login_required
def payment_methods(request: HttpRequest) -> HttpResponse:
    outcome = _SETUP_MESSAGES.get(request.GET.get("setup", ""))
    if outcome is not None:
        messages.add_message(request, *outcome)
        return redirect("payment-methods")
    cards = [
        {"method": m, "label": card_label(m), "expiry": card_expiry(m)}
        for m in payment_method_list_for_customer(customer=request.user)
    ]
    return render(request, "billing/payment_methods.html", {"cards": cards})


@login_required
@require_POST
def payment_method_add(request: HttpRequest) -> HttpResponse:
    """Send the customer to Stripe's page to save a card (it comes back to the list)."""
    try:
        url = payment_method_setup_start(customer=request.user, actor=Actor.customer(request.user))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("payment-methods")
    return redirect(url)


@login_required
@require_POST
def payment_method_default(request: HttpRequest, payment_method_id: int) -> HttpResponse:
    try:
        method = payment_method_make_default(
            customer=request.user,
            payment_method_id=payment_method_id,
            actor=Actor.customer(request.user),
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    messages.success(request, _("%(card)s now pays your renewals.") % {"card": card_label(method)})
    return redirect("payment-methods")


@login_required
@require_POST
def payment_method_delete(request: HttpRequest, payment_method_id: int) -> HttpResponse:
    try:
        payment_method_remove(
            customer=request.user,
            payment_method_id=payment_method_id,
            actor=Actor.customer(request.user),
        )
        messages.success(request, _("The card was removed."))
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("payment-methods")
