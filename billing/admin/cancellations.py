"""Server cancellations with their history; staff revoke one or make it take effect today."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from billing.models import Cancellation, CancellationEvent
from billing.services.cancellations import cancellation_revoke, cancellation_terminate_now
from common.actors import Actor
from common.admin import NoDeleteAdmin, StatusEventInline
from common.errors import ApplicationError

ACTION_FORM_TEMPLATE = "admin/provisioning/action_form.html"


class CancellationEventInline(StatusEventInline):
    model = CancellationEvent


class TerminateNowForm(forms.Form):
    confirm = forms.BooleanField(
        label="Terminate these servers today (their files are deleted)", required=True
    )


@admin.register(Cancellation)
class CancellationAdmin(NoDeleteAdmin):
    list_display = (
        "id",
        "deployment",
        "customer_email",
        "mode",
        "status",
        "effective_on",
        "credit_amount",
        "currency",
        "created_at",
    )
    # Fleet-sized: choice filters (no scan for their values), pages in primary-key order (the
    # primary key's index; the model's -created_at default has no index with id), no full
    # COUNT(*) on every page.
    list_filter = ("status", "mode")
    ordering = ("-id",)
    search_fields = ("id", "deployment__name", "deployment__customer__email")
    list_select_related = ("deployment", "deployment__customer")
    show_full_result_count = False
    readonly_fields = (
        "deployment",
        "order",
        "mode",
        "status",
        "effective_on",
        "reason",
        "credit_amount",
        "currency",
        "requested_by",
        "completed_at",
        "revoked_at",
        "created_at",
    )
    fields = readonly_fields
    inlines = (CancellationEventInline,)
    actions = ("revoke", "terminate_now")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # customers cancel; staff terminate servers from the server's page

    @admin.display(description="customer", ordering="deployment__customer__email")
    def customer_email(self, cancellation: Cancellation) -> str:
        return cancellation.deployment.customer.email

    @admin.action(permissions=["change"], description="Revoke (keep the server)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Cancellation]) -> None:
        for cancellation in queryset.order_by("pk"):
            try:
                cancellation_revoke(
                    cancellation_id=cancellation.pk, actor=Actor.staff(request.user)
                )
            except ApplicationError as exc:
                self.message_user(request, f"{cancellation}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{cancellation} revoked.", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Terminate now (effective today)…")
    def terminate_now(
        self, request: HttpRequest, queryset: QuerySet[Cancellation]
    ) -> HttpResponse | None:
        form = TerminateNowForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for cancellation in queryset.order_by("pk"):
                try:
                    cancellation_terminate_now(
                        cancellation_id=cancellation.pk, actor=Actor.staff(request.user)
                    )
                except ApplicationError as exc:
                    self.message_user(request, f"{cancellation}: {exc.message}", messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"{cancellation}: termination requested (the panel operations drain "
                        "runs it).",
                        messages.SUCCESS,
                    )
            return None
        return TemplateResponse(
            request,
            ACTION_FORM_TEMPLATE,
            {
                **self.admin_site.each_context(request),
                "title": "Terminate now",
                "objects": list(queryset.select_related("deployment")),
                "form": form,
                "action": "terminate_now",
                "opts": self.model._meta,
            },
        )
