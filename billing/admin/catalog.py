"""Catalog editing: plans and add-ons with their prices, coupons."""

from django.contrib import admin

from billing.models import Addon, AddonPrice, Coupon, Plan, PlanPrice
from common.admin import NoDeleteAdmin


class PlanPriceInline(admin.TabularInline):
    model = PlanPrice
    extra = 0


@admin.register(Plan)
class PlanAdmin(NoDeleteAdmin):
    list_display = (
        "name",
        "slug",
        "category",
        "memory_mb",
        "cpu_percent",
        "disk_mb",
        "databases",
        "allocations",
        "backups",
        "egg_id",
        "is_active",
        "display_order",
    )
    list_filter = ("is_active", "category")
    list_editable = ("is_active", "display_order")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("allowed_locations",)
    inlines = [PlanPriceInline]
    fieldsets = (
        (
            None,
            {"fields": ("name", "slug", "description", "category", "is_active", "display_order")},
        ),
        (
            "Limits",
            {
                "fields": (
                    "memory_mb",
                    "swap_mb",
                    "disk_mb",
                    "io_weight",
                    "cpu_percent",
                    "threads",
                    "oom_disabled",
                )
            },
        ),
        ("Feature limits", {"fields": ("databases", "allocations", "backups")}),
        ("Software", {"fields": ("nest_id", "egg_id", "docker_image", "startup", "environment")}),
        ("Where", {"fields": ("allowed_locations",)}),
    )


class AddonPriceInline(admin.TabularInline):
    model = AddonPrice
    extra = 0


@admin.register(Addon)
class AddonAdmin(NoDeleteAdmin):
    list_display = ("name", "slug", "memory_mb", "cpu_percent", "disk_mb", "is_active")
    list_filter = ("is_active",)
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("compatible_plans",)
    inlines = [AddonPriceInline]


@admin.register(Coupon)
class CouponAdmin(NoDeleteAdmin):
    list_display = (
        "code",
        "kind",
        "value",
        "currency",
        "times_redeemed",
        "max_redemptions",
        "valid_until",
        "is_active",
    )
    list_filter = ("kind", "is_active")
    search_fields = ("code", "description")
    readonly_fields = ("times_redeemed",)
    filter_horizontal = ("plans",)
