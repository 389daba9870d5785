"""Plan changes (upgrades and downgrades): their proration, invoice, history, and a retry of
the ones the panel did not apply. Read-only: changes are made by customers and by the panel
work; staff change a plan directly with the order's "Change plan" action."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from billing.models import PlanChange, PlanChangeEvent, PlanChangeStatus
from billing.services.plan_changes import plan_change_retry
from common.actors import Actor
from common.admin import NoDeleteAdmin, StatusEventInline
from common.errors import ApplicationError


class PlanChangeEventInline(StatusEventInline):
    model = PlanChangeEvent


@admin.register(PlanChange)
class PlanChangeAdmin(NoDeleteAdmin):
    list_display = (
        "id",
        "deployment",
        "from_plan",
        "to_plan",
        "direction",
        "status",
        "prorated_amount",
        "currency",
        "invoice",
        "apply_on",
        "created_at",
        "applied_at",
    )
    # Fleet-sized: small fixed choices only, no full COUNT(*), every column joined in one query.
    list_filter = ("status", "direction")
    list_select_related = ("deployment", "from_plan", "to_plan", "invoice")
    show_full_result_count = False
    search_fields = ("id", "deployment__name", "deployment__customer__email", "invoice__number")
    raw_id_fields = ("deployment", "order", "invoice", "requested_by")
    readonly_fields = (
        "deployment",
        "order",
        "from_plan",
        "to_plan",
        "direction",
        "status",
        "billing_cycle",
        "currency",
        "period_start",
        "period_end",
        "days_in_period",
        "days_left",
        "from_price",
        "to_price",
        "prorated_amount",
        "invoice",
        "apply_on",
        "applied_at",
        "attempts",
        "last_error",
        "requested_by",
        "created_at",
        "updated_at",
    )
    inlines = [PlanChangeEventInline]
    actions = ["retry_failed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # requested by customers (dashboard, API)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The page is a record; the retry action needs the permission on the list.
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(permissions=["change"], description="Retry selected failed plan changes")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[PlanChange]) -> None:
        actor = Actor.staff(request.user)
        failed = queryset.filter(status=PlanChangeStatus.FAILED).select_related(None)
        for change_id in failed.values_list("pk", flat=True):
            try:
                plan_change_retry(change_id=change_id, actor=actor)
                self.message_user(request, f"Plan change #{change_id}: queued again.")
            except ApplicationError as exc:
                self.message_user(
                    request, f"Plan change #{change_id}: {exc.message}", messages.ERROR
                )
        skipped = queryset.exclude(status=PlanChangeStatus.FAILED).count()
        if skipped:
            self.message_user(
                request, f"{skipped} selected change(s) are not failed; left alone.", messages.INFO
            )
