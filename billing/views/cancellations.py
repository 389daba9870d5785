"""The customer cancels a server (at the end of the paid term or at once), or keeps it."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from billing.forms import add_service_errors
from billing.models import CancellationMode
from billing.services.cancellations import (
    cancellation_effective_on,
    cancellation_request,
    cancellation_revoke,
    cancellation_scheduled_for,
    refund_rule,
)
from billing.views.dashboard import own_deployment
from common.actors import Actor
from common.errors import ApplicationError, NotFoundError
from servers.models import Deployment


class CancellationForm(forms.Form):
    mode = forms.ChoiceField(
        choices=CancellationMode.choices,
        initial=CancellationMode.END_OF_TERM,
        widget=forms.RadioSelect,
        label=gettext_lazy("When"),
    )
    reason = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=gettext_lazy("Why are you leaving? (optional)"),
    )


def _page(
    request: HttpRequest, deployment: Deployment, form: CancellationForm, *, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "billing/cancellation.html",
        {
            "deployment": deployment,
            "form": form,
            "scheduled": cancellation_scheduled_for(deployment_id=deployment.pk),
            "refund_rule": refund_rule(),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def deployment_cancellation(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """GET: the form (or the scheduled cancellation). POST: validate and show the
    confirmation page; POST with `confirm`: cancel."""
    deployment = own_deployment(request, deployment_id)
    if request.method == "GET":
        return _page(request, deployment, CancellationForm())
    form = CancellationForm(request.POST)
    if not form.is_valid():
        return _page(request, deployment, form, status=400)
    mode = form.cleaned_data["mode"]
    if not request.POST.get("confirm"):
        return render(
            request,
            "billing/cancellation_confirm.html",
            {
                "deployment": deployment,
                "form": form,
                "mode": mode,
                "effective_on": cancellation_effective_on(deployment=deployment, mode=mode),
                "refund_rule": refund_rule(),
            },
        )
    try:
        cancellation = cancellation_request(
            deployment_id=deployment.pk,
            mode=mode,
            reason=form.cleaned_data["reason"],
            actor=Actor.customer(request.user),
            customer=request.user,
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        add_service_errors(form, exc)
        return _page(request, deployment, form, status=422)
    if cancellation.mode == CancellationMode.IMMEDIATE:
        messages.success(
            request, _("%(name)s is being terminated now.") % {"name": deployment.name}
        )
    else:
        messages.success(
            request,
            _("%(name)s will be terminated on %(date)s. You can keep it until then.")
            % {"name": deployment.name, "date": f"{cancellation.effective_on:%Y-%m-%d}"},
        )
    return redirect("deployment-detail", deployment_id=deployment.pk)


@login_required
@require_POST
def deployment_cancellation_revoke(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """ "Keep my server": revoke the scheduled cancellation."""
    deployment = own_deployment(request, deployment_id)
    scheduled = cancellation_scheduled_for(deployment_id=deployment.pk)
    if scheduled is None:
        messages.error(
            request,
            _("%(name)s has no scheduled cancellation.") % {"name": deployment.name},
        )
        return redirect("deployment-detail", deployment_id=deployment.pk)
    try:
        cancellation_revoke(
            cancellation_id=scheduled.pk, actor=Actor.customer(request.user), customer=request.user
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("%(name)s is no longer cancelled: it keeps running.") % {"name": deployment.name},
        )
    return redirect("deployment-detail", deployment_id=deployment.pk)
