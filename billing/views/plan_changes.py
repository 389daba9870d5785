"""The customer upgrades or downgrades a server: the allowed plans with their quotes, the
request, and cancelling a change that has not happened yet."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from billing import selectors
from billing.forms import add_service_errors
from billing.models import BillingCycle, PlanChange
from billing.models.lifecycle import PLAN_CHANGE_OPEN
from billing.services.plan_changes import (
    PlanChangeNotAllowed,
    plan_change_cancel,
    plan_change_options,
    plan_change_request,
)
from billing.views.dashboard import own_deployment
from common.actors import Actor
from common.errors import ApplicationError, NotFoundError
from servers.models import Deployment


class PlanChangeForm(forms.Form):
    plan = forms.SlugField(max_length=60, label=gettext_lazy("New plan"))


def _page(
    request: HttpRequest, deployment: Deployment, form: PlanChangeForm, *, status: int = 200
) -> HttpResponse:
    changes = selectors.plan_changes_for_deployment(deployment_id=deployment.pk)
    pending = next((c for c in changes if c.status in PLAN_CHANGE_OPEN), None)
    refusal, options = "", []
    if pending is None:
        try:
            options = plan_change_options(deployment=deployment)
        except PlanChangeNotAllowed as exc:
            refusal = exc.message
    return render(
        request,
        "billing/plan_change.html",
        {
            "deployment": deployment,
            "form": form,
            "options": options,
            "refusal": refusal,
            "pending": pending,
            "changes": changes,
            "cycle_label": _cycle_label(deployment.billing_cycle),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def deployment_plan_change(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """GET: the plans this server can move to, each with its quote. POST: request one."""
    deployment = own_deployment(request, deployment_id)
    if request.method == "GET":
        return _page(request, deployment, PlanChangeForm())
    form = PlanChangeForm(request.POST)
    if not form.is_valid():
        return _page(request, deployment, form, status=400)
    try:
        change = plan_change_request(
            deployment_id=deployment.pk,
            to_plan_slug=form.cleaned_data["plan"],
            actor=Actor.customer(request.user),
            customer=request.user,
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        if exc.field_errors:
            add_service_errors(form, exc)
            return _page(request, deployment, form, status=400)
        messages.error(request, exc.message)
        return redirect("deployment-plan-change", deployment_id=deployment.pk)
    messages.success(request, _done_message(change))
    return redirect("deployment-plan-change", deployment_id=deployment.pk)


def _cycle_label(cycle: str) -> str:
    try:
        return str(BillingCycle(cycle).label)
    except ValueError:
        return cycle


def _done_message(change: PlanChange) -> str:
    change.refresh_from_db()
    what = f"{change.from_plan.name} → {change.to_plan.name}"
    if change.invoice_id and change.invoice and change.status == "awaiting_payment":
        return _(
            "Upgrade %(what)s requested: pay invoice %(number)s (%(total)s %(currency)s) "
            "and it is applied at once."
        ) % {
            "what": what,
            "number": change.invoice.number,
            "total": change.invoice.total,
            "currency": change.invoice.currency,
        }
    if change.status == "scheduled" and change.apply_on:
        return _("Downgrade %(what)s scheduled for %(date)s.") % {
            "what": what,
            "date": f"{change.apply_on:%Y-%m-%d}",
        }
    message = _("Plan change %(what)s is being applied to your server.") % {"what": what}
    if change.direction == "downgrade" and change.prorated_amount:
        message += " " + _("%(amount)s %(currency)s was added to your account credit.") % {
            "amount": change.prorated_amount,
            "currency": change.currency,
        }
    return message


@login_required
@require_POST
def plan_change_cancel_view(request: HttpRequest, change_id: int) -> HttpResponse:
    try:
        change = plan_change_cancel(
            change_id=change_id, actor=Actor.customer(request.user), customer=request.user
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
        deployment_id = (
            PlanChange.objects.filter(pk=change_id, deployment__customer=request.user)
            .values_list("deployment_id", flat=True)
            .first()
        )
        return redirect("deployment-plan-change", deployment_id=deployment_id)
    messages.success(request, _("Plan change #%(id)s cancelled.") % {"id": change.pk})
    return redirect("deployment-plan-change", deployment_id=change.deployment_id)
