from django.contrib import admin
from django.db import connection, models
from django.http import HttpRequest

from common.models import JobLease, JobRun, WorkerHeartbeat


def distinct_values(model: type[models.Model], field: str, *, limit: int = 200) -> list[str]:
    """The distinct values of an indexed column, for admin filter choices, without reading the
    table: on PostgreSQL a "loose index scan" (a recursive CTE hopping from one value to the
    next: O(values x log rows)), so a fleet-sized table costs what a small one does."""
    column = model._meta.get_field(field).column
    table = connection.ops.quote_name(model._meta.db_table)
    quoted = connection.ops.quote_name(column)
    if connection.vendor != "postgresql":
        return list(model.objects.order_by(field).values_list(field, flat=True).distinct()[:limit])
    sql = (  # identifiers from model metadata, quoted; no value is interpolated
        f"WITH RECURSIVE hop(v) AS (SELECT MIN({quoted}) FROM {table} "  # noqa: S608
        f"UNION ALL SELECT (SELECT MIN({quoted}) FROM {table} WHERE {quoted} > hop.v) "
        f"FROM hop WHERE hop.v IS NOT NULL) SELECT v FROM hop WHERE v IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def indexed_values_filter(field: str, title: str) -> type[admin.SimpleListFilter]:
    """A list filter whose choices come from `distinct_values` (Django's own filter for a plain
    column reads every row of the table for its choices, on every page)."""

    class IndexedValuesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            return [(v, v) for v in distinct_values(model_admin.model, field)]

        def queryset(self, request, queryset):
            value = self.value()
            return queryset.filter(**{field: value}) if value else queryset

    IndexedValuesFilter.title = title
    IndexedValuesFilter.__name__ = f"IndexedValuesFilter_{field}"
    return IndexedValuesFilter


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


class NoDeleteAdmin(admin.ModelAdmin):
    """Rows whose deletion would lose money or history, or orphan what exists on the panel
    (deployments, orders, invoices, coupons, the panel mirror): no "Delete selected", no
    delete button. Servers end by the terminate action; orders by cancel or refund."""

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


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
