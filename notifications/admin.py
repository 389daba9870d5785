"""Notifications admin: the delivery log (read-only, with history), template overrides with a
preview, contact profiles. No secret is ever shown: bodies are redacted copies, and the
encrypted rows (DeliverySecret, CredentialReveal) are not registered."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from common.actors import Actor
from common.admin import ReadOnlyAdmin, StatusEventInline
from common.errors import ApplicationError
from notifications.models import (
    Channel,
    CredentialReveal,
    CredentialsResendRequest,
    CustomerProfile,
    Delivery,
    DeliveryEvent,
    DeliverySecret,
    DeliveryStatus,
    InboundMessage,
    Language,
    NotificationEvent,
    NotificationTemplate,
)
from notifications.rendering import render_preview
from notifications.services import delivery_retry


@admin.register(CustomerProfile)
class CustomerProfileAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "whatsapp_number",
        "whatsapp_consent",
        "whatsapp_verified",
        "preferred_language",
        "notify_by_email",
        "notify_by_whatsapp",
    )
    list_filter = ("preferred_language", "notify_by_whatsapp", "whatsapp_consent")
    search_fields = ("user__username", "user__email", "whatsapp_number")
    list_select_related = ("user",)
    # Verification is the customer's to prove (they send us the code): shown, never edited;
    # a pending code's HMAC is not shown at all.
    readonly_fields = ("whatsapp_verified_number", "whatsapp_verified_at")

    @admin.display(boolean=True, description="WhatsApp verified")
    def whatsapp_verified(self, profile: CustomerProfile) -> bool:
        return profile.whatsapp_verified

    exclude = (
        "whatsapp_code_digest",
        "whatsapp_code_number",
        "whatsapp_code_expires_at",
        "whatsapp_code_attempts",
    )


class DeliveryEventInline(StatusEventInline):
    model = DeliveryEvent


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "event",
        "recipient",
        "channel",
        "status",
        "attempts",
        "provider_message_id",
        "created_at",
        "sent_at",
        "fallback_info",
        "last_error_short",
    )
    list_filter = ("status", "channel", "event", "audience", "language")
    search_fields = ("event_key", "recipient", "provider_message_id", "user__username")
    list_select_related = ("user", "fallback_for", "fallback")
    list_filter = (*list_filter, ("created_at", admin.DateFieldListFilter))
    show_full_result_count = False
    inlines = [DeliveryEventInline]
    actions = ["retry_failed"]
    fields = (
        "event",
        "event_key",
        "audience",
        "user",
        "channel",
        "recipient",
        "language",
        "status",
        "attempts",
        "provider_message_id",
        "template",
        "subject",
        "body",
        "context",
        "last_error",
        "fallback_for",
        "created_at",
        "first_attempt_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "next_attempt_at",
        "lease_until",
    )
    readonly_fields = fields

    @admin.display(description="fallback")
    def fallback_info(self, obj: Delivery) -> str:
        if obj.fallback_for_id:
            return f"fallback for #{obj.fallback_for_id}"
        fallback = getattr(obj, "fallback", None)
        if fallback is not None:
            return f"fell back to {fallback.channel} #{fallback.pk}"
        return ""

    @admin.display(description="error")
    def last_error_short(self, obj: Delivery) -> str:
        return obj.last_error[:120]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.change_delivery")

    @admin.action(description="Retry failed deliveries", permissions=["retry"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        retried = 0
        for delivery_id in queryset.filter(status=DeliveryStatus.FAILED).values_list(
            "pk", flat=True
        ):
            try:
                delivery_retry(delivery_id=delivery_id, actor=Actor.staff(request.user))
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.WARNING)
            else:
                retried += 1
        self.message_user(request, f"{retried} failed deliveries queued again.", messages.SUCCESS)


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(admin.ModelAdmin):
    list_display = ("event", "language", "channel", "is_active", "updated_at", "preview_link")
    list_filter = ("event", "language", "channel", "is_active")
    fields = ("event", "language", "channel", "is_active", "subject", "body", "body_html")

    def get_urls(self):
        urls = [
            path(
                "<int:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="notifications_notificationtemplate_preview",
            ),
            path(
                "defaults/<str:event>/<str:language>/<str:channel>/",
                self.admin_site.admin_view(self.default_preview_view),
                name="notifications_notificationtemplate_default_preview",
            ),
        ]
        return urls + super().get_urls()

    @admin.display(description="preview")
    def preview_link(self, obj: NotificationTemplate) -> str:
        url = reverse("admin:notifications_notificationtemplate_preview", args=[obj.pk])
        return format_html('<a href="{}">Preview</a>', url)

    def preview_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        row = get_object_or_404(NotificationTemplate, pk=object_id)
        if not self.has_view_permission(request, row):
            raise Http404
        return self._preview(request, row.event, row.language, row.channel, row=row)

    def default_preview_view(
        self, request: HttpRequest, event: str, language: str, channel: str
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise Http404
        if (
            event not in NotificationEvent.values
            or language not in Language.values
            or channel not in Channel.values
        ):
            raise Http404
        return self._preview(request, event, language, channel, row=None)

    def _preview(
        self,
        request: HttpRequest,
        event: str,
        language: str,
        channel: str,
        *,
        row: NotificationTemplate | None,
    ) -> HttpResponse:
        mode = request.GET.get("mode") if request.GET.get("mode") in ("link", "inline") else None
        rendered = render_preview(
            event=event, language=language, channel=channel, mode=mode, row=row
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {event} / {language} / {channel}",
            "row": row,
            "event": event,
            "language": language,
            "channel": channel,
            "rendered": rendered,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "notifications/admin/preview.html", context)


@admin.register(CredentialReveal)
class CredentialRevealAdmin(ReadOnlyAdmin):
    """When one-time login links were made and used; the secrets and token never show."""

    list_display = ("user", "created_at", "expires_at", "revealed_at")
    list_filter = ("revealed_at",)
    search_fields = ("user__email",)
    exclude = ("secrets", "token_hash")


@admin.register(CredentialsResendRequest)
class CredentialsResendRequestAdmin(ReadOnlyAdmin):
    list_display = ("user", "key", "created_at")
    search_fields = ("user__email", "key")


@admin.register(DeliverySecret)
class DeliverySecretAdmin(ReadOnlyAdmin):
    """Which deliveries still hold an encrypted secret, and until when (never the value)."""

    list_display = ("delivery", "expires_at")
    exclude = ("values",)


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    """What customers wrote to our WhatsApp number, as commands (the text is never stored), and
    what each got: answered (with the reply's delivery), or why not."""

    list_display = (
        "id",
        "created_at",
        "sender",
        "user",
        "message_type",
        "command",
        "outcome",
        "handled_at",
        "reply_link",
    )
    list_filter = ("outcome", "command", "message_type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("sender", "provider_message_id", "user__email")
    list_select_related = ("user", "reply")
    show_full_result_count = False
    fields = (
        "provider_message_id",
        "sender",
        "user",
        "message_type",
        "command",
        "sent_at",
        "created_at",
        "outcome",
        "handled_at",
        "reply_link",
    )
    readonly_fields = fields

    @admin.display(description="reply")
    def reply_link(self, obj: InboundMessage) -> str:
        if obj.reply_id is None:
            return ""
        url = reverse("admin:notifications_delivery_change", args=[obj.reply_id])
        return format_html('<a href="{}">{} #{}</a>', url, obj.reply.event, obj.reply_id)
