"""Provisioning in the admin: runs with their step timeline, and staff actions on servers.

The Deployment admin is extended here (servers does not know about provisioning): it gains the
provisioning timeline and the actions provision now, retry, retry from step, roll back,
suspend, unsuspend, terminate (confirmation page), restore (within the restore window),
reinstall and reset panel password.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from common.actors import Actor
from common.admin import ReadOnlyAdmin, ReadOnlyInline, StatusEventInline
from common.errors import ApplicationError
from provisioning import operations
from provisioning.fleet.drift import drifts_dismiss, repair_for
from provisioning.fleet.drift_repairs import drift_repairs_request
from provisioning.models import (
    AllocationClaim,
    DriftItem,
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


class RestoreForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="Why the server comes back (history).")
    confirm = forms.BooleanField(
        label="Yes, unsuspend these servers on the panel and make them active again"
    )


class ProvisionedDeploymentAdmin(DeploymentAdmin):
    readonly_fields = (*DeploymentAdmin.readonly_fields, "provisioning_timeline")
    actions = [
        "provision_now",
        "retry_from_step",
        "roll_back_active_run",
        "suspend",
        "unsuspend",
        "terminate",
        "restore",
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

    @admin.action(permissions=["change"], description="Restore (within the restore window)…")
    def restore(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> HttpResponse | None:
        return self._with_form(
            request,
            queryset,
            RestoreForm,
            "restore",
            "Restore terminated servers",
            "restored and active again. Its next due date is unchanged and the order stays "
            "completed: the renewal job issues the next renewal invoice as for any active "
            "server (an overdue due date means an invoice, then dunning, soon; move the due "
            "date first if the customer paid elsewhere)",
            lambda d, data, actor: operations.deployment_restore(
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


# --- drift (billing <-> panel), found by the reconcile job -----------------------------------


class DriftStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("open", "Open"), ("resolved", "Resolved")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[DriftItem]) -> QuerySet[DriftItem]:
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(DriftItem)
class DriftItemAdmin(ReadOnlyAdmin):
    """The drift list: what billing and the panel disagree on, with one-click repair."""

    list_display = (
        "id",
        "kind",
        "deployment_link",
        "panel_server_id",
        "panel_user_id",
        "summary",
        "repair_kind",
        "detected_at",
        "last_seen_at",
        "state",
        "repair_operation",
    )
    list_filter = ("kind", DriftStateFilter, "source")
    search_fields = ("deployment__name", "deployment__customer__email", "resolution")
    list_select_related = ("deployment", "repair_operation")
    # Fleet-sized table: no COUNT(*) over the whole table on every page.
    show_full_result_count = False
    ordering = ("-detected_at", "-id")
    actions = ("repair", "dismiss")
    readonly_fields = (
        "kind",
        "deployment",
        "panel_server_id",
        "panel_user_id",
        "details",
        "source",
        "detected_at",
        "last_seen_at",
        "resolved_at",
        "resolution",
        "resolved_by",
        "repair_operation",
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[DriftItem], search_term: str
    ) -> tuple[QuerySet[DriftItem], bool]:
        # A number finds the deployment, panel server or panel user of that id (exact, indexed).
        term = search_term.strip().lstrip("#")
        if term.isascii() and term.isdigit():
            number = int(term)
            return (
                queryset.filter(
                    Q(deployment_id=number) | Q(panel_server_id=number) | Q(panel_user_id=number)
                ),
                False,
            )
        return super().get_search_results(request, queryset, search_term)

    def has_repair_permission(self, request: HttpRequest) -> bool:
        # The form stays read-only; the change permission gates repair and dismiss.
        return request.user.has_perm("provisioning.change_driftitem")

    @admin.display(description="deployment", ordering="deployment")
    def deployment_link(self, item: DriftItem) -> str:
        if item.deployment_id is None:
            return "-"
        url = reverse("admin:servers_deployment_change", args=[item.deployment_id])
        return format_html('<a href="{}">{}</a>', url, item.deployment)

    @admin.display(description="details")
    def summary(self, item: DriftItem) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in item.details.items() if k != "repair")
        return shown[:160]

    @admin.display(description="repair")
    def repair_kind(self, item: DriftItem) -> str:
        return repair_for(kind=item.kind, details=item.details) or "by hand"

    @admin.display(description="state")
    def state(self, item: DriftItem) -> str:
        return "open" if item.is_open else f"resolved: {item.resolution}"[:80]

    @admin.action(permissions=["repair"], description="Repair (request the repair operation)")
    def repair(self, request: HttpRequest, queryset: QuerySet[DriftItem]) -> None:
        actor = Actor.staff(request.user)
        items = list(queryset.filter(resolved_at__isnull=True))
        result = drift_repairs_request(
            items=items, actor=actor, reason=f"Drift repair requested by {actor.label}"
        )
        self.message_user(
            request,
            f"{result.requested} repair operation(s) requested, {result.adopted} orphan "
            f"server(s) adopted, {result.already_open} already in progress, "
            f"{result.not_repairable} without an automatic repair (handle by hand).",
            messages.SUCCESS if result.requested or result.adopted else messages.WARNING,
        )

    @admin.action(permissions=["repair"], description="Dismiss (close without a repair)")
    def dismiss(self, request: HttpRequest, queryset: QuerySet[DriftItem]) -> None:
        closed = drifts_dismiss(
            item_ids=queryset.filter(resolved_at__isnull=True).values_list("pk", flat=True),
            actor=Actor.staff(request.user),
        )
        self.message_user(request, f"{closed} drift item(s) dismissed.", messages.SUCCESS)


from provisioning.fleet import admin as _fleet_admin  # noqa: E402, F401  (panel operations)
