from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from common.admin import (
    NoDeleteAdmin,
    ReadOnlyAdmin,
    StatusEventInline,
    indexed_values_filter,
)
from common.logging import mask_secret_values
from servers.models import (
    CapacityHold,
    Deployment,
    DeploymentEvent,
    Egg,
    EggVariable,
    HealthIncident,
    Location,
    Nest,
    Node,
    PowerAction,
    ServerHealth,
)


@admin.register(Location)
class LocationAdmin(NoDeleteAdmin):
    list_display = ("short_code", "long_name", "panel_id", "is_active")
    list_filter = ("is_active",)
    search_fields = ("short_code", "long_name")


@admin.register(Node)
class NodeAdmin(NoDeleteAdmin):
    list_display = (
        "name",
        "panel_id",
        "location",
        "memory_mb",
        "allocated_memory_mb",
        "disk_mb",
        "allocated_disk_mb",
        "free_allocations",
        "maintenance_mode",
        "synced_at",
    )
    list_filter = ("location", "maintenance_mode", "is_public")
    search_fields = ("name", "fqdn")


class EggVariableInline(admin.TabularInline):
    model = EggVariable
    extra = 0
    fields = ("env_variable", "name", "default_value", "rules", "user_viewable", "user_editable")


@admin.register(Nest)
class NestAdmin(NoDeleteAdmin):
    list_display = ("name", "panel_id")


@admin.register(Egg)
class EggAdmin(NoDeleteAdmin):
    list_display = ("name", "panel_id", "nest", "docker_image", "synced_at")
    list_filter = ("nest",)
    search_fields = ("name",)
    inlines = [EggVariableInline]


class DeploymentEventInline(StatusEventInline):
    model = DeploymentEvent


@admin.register(Deployment)
class DeploymentAdmin(NoDeleteAdmin):
    list_display = (
        "id",
        "name",
        "customer",
        "plan_name",
        "billing_cycle",
        "location",
        "status",
        "next_due_date",
        "connection_address",
        "panel_server_id",
    )
    # Fleet-sized: filter choices from the indexes, no date hierarchy scan, no full COUNT(*).
    list_filter = (
        "status",
        "location",
        indexed_values_filter("plan_slug", "plan"),
        indexed_values_filter("billing_cycle", "billing cycle"),
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("name", "customer__username", "customer__email", "panel_identifier")
    list_select_related = ("customer", "location")
    show_full_result_count = False
    readonly_fields = (
        "customer",
        "plan_slug",
        "plan_name",
        "billing_cycle",
        "location",
        "node",
        "spec_masked",
        "addons",
        "variables_masked",
        "status",
        "panel_user_id",
        "panel_server_id",
        "panel_server_uuid",
        "panel_identifier",
        "ip_address",
        "port",
        "activated_at",
        "suspended_at",
        "terminated_at",
        "panel_deletion_due_at",
        "final_backup_status",
        "final_backup_uuid",
        "created_at",
        "updated_at",
    )
    exclude = ("spec", "variables")  # shown masked: egg variables may hold tokens
    inlines = [DeploymentEventInline]

    def has_add_permission(self, request):
        return False  # deployments come from orders

    @admin.display(description="Spec")
    def spec_masked(self, deployment: Deployment) -> object:
        return mask_secret_values(deployment.spec)

    @admin.display(description="Variables")
    def variables_masked(self, deployment: Deployment) -> object:
        return mask_secret_values(deployment.variables)


# ---------------------------------------------------------------------- fleet health


def _deployment_link(deployment_id: int | None, name: str = "") -> str:
    if deployment_id is None:
        return "-"
    url = reverse("admin:servers_deployment_change", args=[deployment_id])
    return format_html('<a href="{}">#{} {}</a>', url, deployment_id, name)


@admin.register(ServerHealth)
class ServerHealthAdmin(ReadOnlyAdmin):
    """The fleet health page: what the last health run saw of every live server (read-only;
    the `health` job writes it)."""

    list_display = (
        "deployment_column",
        "deployment_status",
        "reachable",
        "installed",
        "suspended_on_panel",
        "panel_status",
        "power_state",
        "power_state_since",
        "last_checked_at",
        "resources_checked_at",
        "error_column",
    )
    # Each filter has an index (power_state / reachable / suspended_on_panel, then the key the
    # changelist orders by).
    list_filter = ("power_state", "reachable", "suspended_on_panel")
    search_fields = ("deployment__name", "=deployment__id", "=panel_server_id")
    list_select_related = ("deployment",)
    show_full_result_count = False  # no COUNT(*) over the whole fleet on every page
    fields = (
        "deployment_column",
        "deployment_status",
        "panel_server_id",
        "reachable",
        "installed",
        "suspended_on_panel",
        "panel_status",
        "power_state",
        "power_state_since",
        "last_checked_at",
        "resources_checked_at",
        "last_error",
        "incidents_link",
    )
    readonly_fields = fields

    @admin.display(description="Deployment", ordering="deployment")
    def deployment_column(self, health: ServerHealth) -> str:
        return _deployment_link(health.deployment_id, health.deployment.name)

    @admin.display(description="Status here")
    def deployment_status(self, health: ServerHealth) -> str:
        return health.deployment.get_status_display()

    @admin.display(description="Last error")
    def error_column(self, health: ServerHealth) -> str:
        error = health.last_error
        return error if len(error) <= 80 else error[:79] + "…"

    @admin.display(description="Incidents")
    def incidents_link(self, health: ServerHealth) -> str:
        url = reverse("admin:servers_healthincident_changelist")
        return format_html(
            '<a href="{}?deployment__id__exact={}">Incidents of this server</a>',
            url,
            health.deployment_id,
        )


class OpenIncidentFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "Open"), ("no", "Closed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(closed_at__isnull=False)
        return queryset


@admin.register(HealthIncident)
class HealthIncidentAdmin(ReadOnlyAdmin):
    """Health incidents, one per occurrence (staff were alerted once for each)."""

    list_display = (
        "kind",
        "target",
        "opened_at",
        "last_seen_at",
        "closed_at",
        "alerted_at",
        "checks",
    )
    list_filter = (OpenIncidentFilter, "kind")
    search_fields = ("deployment__name", "=deployment__id")
    list_select_related = ("deployment",)
    ordering = ("-opened_at",)  # health_incident_opened_idx / health_incident_open_idx
    show_full_result_count = False
    fields = (
        "kind",
        "target",
        "health_link",
        "opened_at",
        "last_seen_at",
        "closed_at",
        "alerted_at",
        "checks",
        "detail",
    )
    readonly_fields = fields

    @admin.display(description="Server", ordering="deployment")
    def target(self, incident: HealthIncident) -> str:
        if incident.deployment_id is None:
            return "Panel"
        return _deployment_link(incident.deployment_id, incident.deployment.name)

    @admin.display(description="Health")
    def health_link(self, incident: HealthIncident) -> str:
        if incident.deployment_id is None:
            return "-"
        url = reverse("admin:servers_serverhealth_change", args=[incident.deployment_id])
        return format_html('<a href="{}">Fleet health of this server</a>', url)


class ActiveHoldFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "active"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "Counting against the node"), ("no", "Released or expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        live = Q(released_at__isnull=True) & (
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )
        if self.value() == "yes":
            return queryset.filter(live)
        if self.value() == "no":
            return queryset.exclude(live)
        return queryset


@admin.register(CapacityHold)
class CapacityHoldAdmin(ReadOnlyAdmin):
    """Room kept on a node for an order between checkout and its server (servers.capacity):
    why a location shows sold out, and what happened to an order's hold."""

    list_display = (
        "id",
        "target",
        "node",
        "memory_mb",
        "disk_mb",
        "taken_at",
        "expires_at",
        "released_at",
        "release_reason",
    )
    list_filter = (ActiveHoldFilter, "node")
    search_fields = ("=deployment__id", "deployment__name")
    list_select_related = ("deployment", "node")
    ordering = ("-pk",)
    show_full_result_count = False

    @admin.display(description="Server", ordering="deployment")
    def target(self, hold: CapacityHold) -> str:
        return _deployment_link(hold.deployment_id, hold.deployment.name)


@admin.register(PowerAction)
class PowerActionAdmin(ReadOnlyAdmin):
    """The owners' power signals (the buttons' rate limit and the health job read these; each
    also has a row in its server's history). Search by deployment id."""

    list_display = ("created_at", "deployment", "signal", "actor")
    list_filter = ("signal",)
    search_fields = ("=deployment__id",)
    list_select_related = ("deployment", "actor")
    raw_id_fields = ("deployment",)
    show_full_result_count = False
