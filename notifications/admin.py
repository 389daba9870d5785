from django.contrib import admin

from notifications.models import CustomerProfile


@admin.register(CustomerProfile)
class CustomerProfileAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "whatsapp_number",
        "whatsapp_consent",
        "preferred_language",
        "notify_by_email",
        "notify_by_whatsapp",
    )
    list_filter = ("preferred_language", "notify_by_whatsapp", "whatsapp_consent")
    search_fields = ("user__username", "user__email", "whatsapp_number")
    list_select_related = ("user",)
