from django.contrib import admin
from django.http import HttpRequest

from common.models import JobLease, JobRun, WorkerHeartbeat


class ReadOnlyInline(admin.TabularInline):
    """History rows: shown, never edited or deleted from the admin."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class StatusEventInline(ReadOnlyInline):
    fields = ("created_at", "from_status", "to_status", "actor_label", "reason")
    readonly_fields = fields
    ordering = ("created_at", "id")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("queue", "hostname", "last_seen_at", "beats")


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    """Every run of a fleet job: `manage.py run_job NAME` and beat's runs alike."""

    list_display = (
        "name",
        "status",
        "dry_run",
        "triggered_by",
        "started_at",
        "duration_ms",
        "counts",
    )
    list_filter = ("name", "status", "dry_run")
    date_hierarchy = "started_at"
    show_full_result_count = False


@admin.register(JobLease)
class JobLeaseAdmin(ReadOnlyAdmin):
    """Job locks where the database has no advisory locks (the SQLite demo)."""

    list_display = ("name", "holder", "expires_at")
