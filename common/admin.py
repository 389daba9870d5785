from django.contrib import admin
from django.http import HttpRequest

from common.models import WorkerHeartbeat


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
