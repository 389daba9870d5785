from django.contrib import admin

from common.admin import ReadOnlyAdmin, StatusEventInline
from provisioning.models import ProvisioningRequest, ProvisioningRequestEvent


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
