"""Panel operations in the admin (imported by provisioning/admin.py): what the fleet jobs and
staff asked the panel to do, in which order, how each attempt went, and one-click retry."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from common.admin import ReadOnlyAdmin
from provisioning.models import PanelOperation, PanelOperationStatus


@admin.register(PanelOperation)
class PanelOperationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "status",
        "deployment",
        "panel_server_id",
        "priority",
        "attempts",
        "next_attempt_at",
        "verified",
        "outcome",
        "requested_by",
        "created_at",
    )
    list_filter = ("status", "kind", "verified")
    search_fields = ("=deployment__id", "=panel_server_id", "reason", "outcome", "requested_by")
    list_select_related = ("deployment",)
    raw_id_fields = ("deployment",)
    # Fleet-sized tables: no COUNT(*) over the whole table on every page.
    show_full_result_count = False
    ordering = ("-created_at", "-id")
    actions = ("retry_now",)
    readonly_fields = (
        "deployment",
        "panel_server_id",
        "panel_user_id",
        "kind",
        "status",
        "priority",
        "requested_by",
        "reason",
        "params",
        "attempts",
        "next_attempt_at",
        "lease_expires_at",
        "started_at",
        "finished_at",
        "outcome",
        "verified",
        "last_error",
        "attempt_log",
        "created_at",
        "updated_at",
    )

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The form stays read-only; the change permission gates the retry action.
        return request.user.has_perm("provisioning.change_paneloperation")

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm("provisioning.view_paneloperation") or (
            self.has_change_permission(request, obj)
        )

    @admin.action(description="Retry now (pending or failed operations)", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[PanelOperation]) -> None:
        from provisioning.tasks import drain_panel_operations

        who = f"staff:{request.user.get_username()}"
        now = timezone.now()
        pending = 0
        for operation in queryset.filter(status=PanelOperationStatus.PENDING):
            entry = {
                "at": now.isoformat(),
                "attempt": operation.attempts,
                "result": f"{who}: retry now",
            }
            pending += PanelOperation.objects.filter(
                pk=operation.pk, status=PanelOperationStatus.PENDING
            ).update(next_attempt_at=now, attempt_log=[*operation.attempt_log, entry][-10:])
        failed = 0
        for operation in queryset.filter(status=PanelOperationStatus.FAILED):
            # A new row (the failed one stays as history); the constraint keeps it single.
            clone = PanelOperation(
                deployment_id=operation.deployment_id,
                panel_server_id=operation.panel_server_id,
                panel_user_id=operation.panel_user_id,
                kind=operation.kind,
                priority=operation.priority,
                requested_by=who,
                reason=f"Retry of operation #{operation.pk}: {operation.reason}"[:2000],
                params=operation.params,
                next_attempt_at=timezone.now(),
            )
            PanelOperation.objects.bulk_create([clone], ignore_conflicts=True)
            failed += 1
        drain_panel_operations.delay()
        self.message_user(
            request,
            f"{pending} pending operation(s) due now, {failed} failed operation(s) queued again.",
            messages.SUCCESS,
        )
