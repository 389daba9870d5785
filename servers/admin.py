from django.contrib import admin

from common.admin import StatusEventInline
from common.logging import mask_secret_values
from servers.models import Deployment, DeploymentEvent, Egg, EggVariable, Location, Nest, Node


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("short_code", "long_name", "panel_id", "is_active")
    list_filter = ("is_active",)
    search_fields = ("short_code", "long_name")


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
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
class NestAdmin(admin.ModelAdmin):
    list_display = ("name", "panel_id")


@admin.register(Egg)
class EggAdmin(admin.ModelAdmin):
    list_display = ("name", "panel_id", "nest", "docker_image", "synced_at")
    list_filter = ("nest",)
    search_fields = ("name",)
    inlines = [EggVariableInline]


class DeploymentEventInline(StatusEventInline):
    model = DeploymentEvent


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
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
    list_filter = ("status", "location", "plan_slug", "billing_cycle")
    search_fields = ("name", "customer__username", "customer__email", "panel_identifier")
    list_select_related = ("customer", "location")
    date_hierarchy = "created_at"
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
