"""Provisioning in the admin: runs with their step timeline, and staff actions on servers.

The Deployment admin is extended here (servers does not know about provisioning): it gains the
provisioning timeline and the actions provision now, retry, retry from step, roll back,
suspend, unsuspend, terminate (confirmation page), reinstall and reset panel password.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from common.actors import Actor
from common.admin import ReadOnlyAdmin, ReadOnlyInline, StatusEventInline
from common.errors import ApplicationError
from provisioning import operations
from provisioning.models import (
    AllocationClaim,
    PanelAccount,
    ProvisioningRequest,
    ProvisioningRequestEvent,
    ProvisioningRun,
    ProvisioningStepAttempt,
)
from provisioning.saga.steps import STEP_NAMES
from provisioning.selectors import runs_for_deployment
from provisioning.services import provisioning_abort, provisioning_retry
from servers.admin import DeploymentAdmin
from servers.models import Deployment


def provisioning_timeline_html(deployment_id: int) -> str:
    """Runs and their steps as a small table (used on the deployment and order pages)."""
    runs = list(runs_for_deployment(deployment_id=deployment_id))
    if not runs:
        return "No provisioning run yet."
    blocks = []
    for run in runs:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>#{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    s.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                    s.direction,
                    s.step,
                    s.attempt,
                    s.status,
                    "-" if s.duration_ms is None else f"{s.duration_ms} ms",
                    s.error[:200] or ", ".join(f"{k}={v}" for k, v in s.summary.items())[:200],
                )
                for s in run.steps.all()
            ),
        )
        blocks.append(
            format_html(
                "<p><strong>Run #{}</strong> {} — by {}, started {}{}</p>"
                "<table><tr><th>time</th><th>direction</th><th>step</th><th>try</th>"
                "<th>result</th><th>took</th><th>details</th></tr>{}</table>",
                run.pk,
                run.get_status_display(),
                run.triggered_by,
                run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                format_html("; error: {}", run.last_error) if run.last_error else "",
                rows,
            )
        )
    return format_html_join("", "{}", ((b,) for b in blocks))


class ProvisioningRequestEventInline(StatusEventInline):
    model = ProvisioningRequestEvent


@admin.register(ProvisioningRequest)
class ProvisioningRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "order_reference",
        "deployment",
        "status",
        "automatic",
        "requested_by",
        "created_at",
    )
    list_filter = ("status", "automatic")
    search_fields = ("order_reference", "deployment__name", "deployment__customer__email")
    list_select_related = ("deployment",)
    inlines = [ProvisioningRequestEventInline]


class StepAttemptInline(ReadOnlyInline):
    model = ProvisioningStepAttempt
    fields = (
        "started_at",
        "direction",
        "step",
        "attempt",
        "status",
        "duration_ms",
        "fence",
        "summary",
        "error",
    )
    readonly_fields = fields


@admin.register(ProvisioningRun)
class ProvisioningRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "deployment",
        "status",
        "current_step",
        "attempt",
        "started_at",
        "finished_at",
        "short_error",
    )
    list_filter = ("status", "failed_step")
    search_fields = ("request__order_reference", "deployment__name", "last_error")
    list_select_related = ("deployment", "request")
    exclude = ("server_payload",)
    inlines = [StepAttemptInline]
    actions = ["roll_back"]

    @admin.display(description="step")
    def current_step(self, run: ProvisioningRun) -> str:
        return STEP_NAMES[min(run.step_index, len(STEP_NAMES) - 1)]

    @admin.display(description="error")
    def short_error(self, run: ProvisioningRun) -> str:
        return run.last_error[:120]

    def has_operate_permission(self, request: HttpRequest) -> bool:
        # Runs are read-only records; operating on them is a right over the servers.
        return request.user.has_perm("servers.change_deployment")

    @admin.action(permissions=["operate"], description="Roll back (undo what the run created)")
    def roll_back(self, request: HttpRequest, queryset: QuerySet[ProvisioningRun]) -> None:
        for run in queryset:
            try:
                provisioning_abort(
                    run_id=run.pk,
                    actor=Actor.staff(request.user),
                    reason="Rolled back from the admin",
                )
                self.message_user(request, f"Run #{run.pk}: rollback started.")
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)


@admin.register(PanelAccount)
class PanelAccountAdmin(ReadOnlyAdmin):
    list_display = ("user", "username", "email", "panel_user_id", "created_by_portal")
    search_fields = ("user__email", "username", "email")
    exclude = ("password",)  # encrypted at rest; never shown


@admin.register(AllocationClaim)
class AllocationClaimAdmin(ReadOnlyAdmin):
    list_display = ("ip", "port", "node", "deployment", "run", "is_primary", "created_by_portal")
    list_filter = ("node", "is_primary")
    search_fields = ("ip", "port")


class StepChoiceForm(forms.Form):
    step = forms.ChoiceField(choices=[(name, name) for name in STEP_NAMES])


class SuspendForm(forms.Form):
    reason = forms.CharField(max_length=500, initial="Suspended by staff")
    confirm = forms.BooleanField(label="Yes, stop these servers on the panel")


class ResetPasswordForm(forms.Form):
    confirm = forms.BooleanField(
        label="Yes, replace the customers' panel passwords and send them the new login"
    )


class ConfirmForm(forms.Form):
    reason = forms.CharField(max_length=500, initial="Terminated by staff")
    confirm = forms.BooleanField(label="Yes, delete the server and its data on the panel")


class ProvisionedDeploymentAdmin(DeploymentAdmin):
    readonly_fields = (*DeploymentAdmin.readonly_fields, "provisioning_timeline")
    actions = [
        "provision_now",
        "retry_from_step",
        "roll_back_active_run",
        "suspend",
        "unsuspend",
        "terminate",
        "reinstall",
        "reset_panel_password",
    ]

    @admin.display(description="Provisioning")
    def provisioning_timeline(self, deployment: Deployment) -> str:
        return provisioning_timeline_html(deployment.pk)

    def _each(self, request: HttpRequest, queryset: QuerySet[Deployment], what: str, call) -> None:
        for deployment in queryset:
            try:
                call(deployment)
                self.message_user(request, f"{deployment}: {what}.", messages.SUCCESS)
            except ApplicationError as exc:
                self.message_user(request, f"{deployment}: {exc.message}", messages.ERROR)

    @admin.action(permissions=["change"], description="Provision now / retry")
    def provision_now(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        actor = Actor.staff(request.user)
        self._each(
            request,
            queryset,
            "provisioning started",
            lambda d: provisioning_retry(deployment_id=d.pk, actor=actor),
        )

    @admin.action(permissions=["change"], description="Retry from a step…")
    def retry_from_step(
        self, request: HttpRequest, queryset: QuerySet[Deployment]
    ) -> HttpResponse | None:
        return self._with_form(
            request,
            queryset,
            StepChoiceForm,
            "retry_from_step",
            "Retry provisioning from a step",
            "provisioning started from the chosen step",
            lambda d, data, actor: provisioning_retry(
                deployment_id=d.pk, actor=actor, from_step=STEP_NAMES.index(data["step"])
            ),
        )

    @admin.action(permissions=["change"], description="Roll back the active provisioning run")
    def roll_back_active_run(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        actor = Actor.staff(request.user)

        def roll_back(deployment: Deployment) -> None:
            run = ProvisioningRun.objects.filter(deployment=deployment).order_by("-pk").first()
            if run is None:
                raise ApplicationError("No provisioning run.")
            provisioning_abort(run_id=run.pk, actor=actor, reason="Rolled back from the admin")

        self._each(request, queryset, "rollback started", roll_back)

    @admin.action(permissions=["change"], description="Suspend on the panel…")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> HttpResponse | None:
        return self._with_form(
            request,
            queryset,
            SuspendForm,
            "suspend",
            "Suspend servers",
            "suspended",
            lambda d, data, actor: operations.deployment_suspend(
                deployment_id=d.pk, actor=actor, reason=data["reason"]
            ),
        )

    @admin.action(permissions=["change"], description="Unsuspend on the panel")
    def unsuspend(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        actor = Actor.staff(request.user)
        self._each(
            request,
            queryset,
            "unsuspended",
            lambda d: operations.deployment_unsuspend(
                deployment_id=d.pk, actor=actor, reason="Unsuspended by staff"
            ),
        )

    @admin.action(permissions=["change"], description="Terminate (delete on the panel)…")
    def terminate(
        self, request: HttpRequest, queryset: QuerySet[Deployment]
    ) -> HttpResponse | None:
        return self._with_form(
            request,
            queryset,
            ConfirmForm,
            "terminate",
            "Terminate servers",
            "terminated",
            lambda d, data, actor: operations.deployment_terminate(
                deployment_id=d.pk, actor=actor, reason=data["reason"]
            ),
        )

    @admin.action(permissions=["change"], description="Reinstall on the panel")
    def reinstall(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        actor = Actor.staff(request.user)
        self._each(
            request,
            queryset,
            "reinstall started",
            lambda d: operations.deployment_reinstall(deployment_id=d.pk, actor=actor),
        )

    @admin.action(permissions=["change"], description="Reset the panel password…")
    def reset_panel_password(
        self, request: HttpRequest, queryset: QuerySet[Deployment]
    ) -> HttpResponse | None:
        # The new password is stored encrypted and sent to the customer; never shown here.
        return self._with_form(
            request,
            queryset,
            ResetPasswordForm,
            "reset_panel_password",
            "Reset panel passwords",
            "panel password reset; the customer gets the new login",
            lambda d, data, actor: operations.panel_password_reset(deployment_id=d.pk, actor=actor),
        )

    def _with_form(
        self,
        request: HttpRequest,
        queryset: QuerySet[Deployment],
        form_class: type[forms.Form],
        action: str,
        title: str,
        done: str,
        call,
    ) -> HttpResponse | None:
        """An action that first asks for a reason or a confirmation on its own page."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if not ("apply" in request.POST and form.is_valid()):
            return self._form_page(request, queryset, form, action, title)
        data, actor = form.cleaned_data, Actor.staff(request.user)
        self._each(request, queryset, done, lambda d: call(d, data, actor))
        return None

    def _form_page(
        self,
        request: HttpRequest,
        queryset: QuerySet[Deployment],
        form: forms.Form,
        action: str,
        title: str,
    ) -> HttpResponse:
        return TemplateResponse(
            request,
            "admin/provisioning/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "objects": queryset,
                "form": form,
                "action": action,
                "opts": self.model._meta,
            },
        )


admin.site.unregister(Deployment)
admin.site.register(Deployment, ProvisionedDeploymentAdmin)

from provisioning.fleet import admin as _fleet_admin  # noqa: E402, F401  (panel operations)
