"""Billing admin: catalog editing, orders and invoices with their history, staff actions."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from billing.catalog import plan_panel_spec
from billing.models import (
    Addon,
    AddonPrice,
    CheckoutSession,
    Coupon,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceSequence,
    Order,
    OrderAddon,
    OrderEvent,
    Payment,
    Plan,
    PlanPrice,
    StripeEvent,
)
from billing.services.orders import order_cancel
from billing.services.payments import payment_record_manual
from billing.services.waiting_orders import order_move_location, order_refund
from common.actors import Actor
from common.admin import (
    NoDeleteAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    StatusEventInline,
    indexed_values_filter,
)
from common.errors import ApplicationError
from common.logging import mask_secret_values
from provisioning.admin import provisioning_timeline_html
from provisioning.models import ProvisioningRun, RunStatus
from provisioning.operations import deployment_change_build
from servers.models import Location


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


class OrderAddonInline(ReadOnlyInline):
    model = OrderAddon
    fields = ("name", "amount")
    readonly_fields = fields


class OrderInvoiceInline(ReadOnlyInline):
    model = Invoice
    fields = ("number", "status", "total", "currency", "due_date", "paid_at")
    readonly_fields = fields
    show_change_link = True


class OrderEventInline(StatusEventInline):
    model = OrderEvent


class WaitingForCapacityFilter(admin.SimpleListFilter):
    """Paid orders whose run waits for room (few rows: only running runs are read)."""

    title, parameter_name = "capacity", "waiting_for_capacity"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("yes", "Waiting for capacity")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() != "yes":
            return queryset
        waiting = ProvisioningRun.objects.filter(
            status=RunStatus.RUNNING, waiting_for_capacity_since__isnull=False
        ).values("deployment_id")
        return queryset.filter(deployment_id__in=waiting)


@admin.register(Order)
class OrderAdmin(NoDeleteAdmin):
    list_display = (
        "id",
        "customer",
        "plan",
        "billing_cycle",
        "location",
        "status",
        "created_at",
        "confirmed_at",
    )
    # Fleet-sized: no filter or date hierarchy that reads the whole table for its choices, and
    # no full COUNT(*) on every page (docs/adr/0007).
    list_filter = (
        "status",
        WaitingForCapacityFilter,
        "plan",
        indexed_values_filter("billing_cycle", "billing cycle"),
        "location",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("id", "customer__username", "customer__email", "server_name")
    list_select_related = ("customer", "plan", "location")
    show_full_result_count = False
    readonly_fields = (
        "customer",
        "plan",
        "billing_cycle",
        "location",
        "currency",
        "coupon",
        "server_name",
        "variables_masked",
        "deployment",
        "status",
        "confirmed_at",
        "completed_at",
        "cancelled_at",
        "last_error",
        "idempotency_key",
        "created_at",
        "updated_at",
        "provisioning_timeline",
    )
    exclude = ("variables",)  # shown masked: egg variables may hold tokens
    inlines = [OrderAddonInline, OrderInvoiceInline, OrderEventInline]
    actions = ["cancel_unpaid_orders", "change_plan", "move_waiting_order", "refund_unprovisioned"]

    @admin.action(permissions=["change"], description="Move waiting order to another location…")
    def move_waiting_order(
        self, request: HttpRequest, queryset: QuerySet[Order]
    ) -> HttpResponse | None:
        form = MoveLocationForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for order in queryset:
                try:
                    order_move_location(
                        order_id=order.pk,
                        location_id=form.cleaned_data["location"].pk,
                        actor=Actor.staff(request.user),
                        reason=form.cleaned_data["reason"],
                    )
                    self.message_user(
                        request,
                        f"{order}: moved to {form.cleaned_data['location']}; starting now.",
                        messages.SUCCESS,
                    )
                except ApplicationError as exc:
                    self.message_user(request, f"{order}: {exc.message}", messages.ERROR)
            return None
        return self._action_form(request, queryset, form, "move_waiting_order", "Move order")

    @admin.action(permissions=["change"], description="Cancel and refund (paid, no server yet)…")
    def refund_unprovisioned(
        self, request: HttpRequest, queryset: QuerySet[Order]
    ) -> HttpResponse | None:
        form = RefundForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for order in queryset:
                try:
                    refunds = order_refund(
                        order_id=order.pk,
                        actor=Actor.staff(request.user),
                        reason=form.cleaned_data["reason"],
                    )
                except ApplicationError as exc:
                    self.message_user(request, f"{order}: {exc.message}", messages.ERROR)
                    continue
                owed = [r for r in refunds if r.provider == "manual"]
                text = ", ".join(f"{r.amount} {r.currency} ({r.provider})" for r in refunds)
                self.message_user(
                    request, f"{order}: cancelled, refunded {text or 'nothing'}.", messages.SUCCESS
                )
                for r in owed:
                    self.message_user(
                        request,
                        f"{order}: pay {r.amount} {r.currency} back by bank transfer "
                        f"(paid with reference {r.reference or '-'}).",
                        messages.WARNING,
                    )
            return None
        return self._action_form(request, queryset, form, "refund_unprovisioned", "Refund")

    def _action_form(
        self,
        request: HttpRequest,
        queryset: QuerySet[Order],
        form: forms.Form,
        action: str,
        title: str,
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "objects": list(queryset.select_related("customer", "plan", "location")),
            "form": form,
            "action": action,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/provisioning/action_form.html", context)

    @admin.display(description="Variables")
    def variables_masked(self, order: Order) -> object:
        return mask_secret_values(order.variables)

    @admin.display(description="Provisioning")
    def provisioning_timeline(self, order: Order) -> str:
        return provisioning_timeline_html(order.deployment_id)

    @admin.action(
        permissions=["change"], description="Change plan (apply new limits on the panel)…"
    )
    def change_plan(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        form = ChangePlanForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            plan = form.cleaned_data["plan"]
            for order in queryset.select_related("deployment"):
                addons = [item.addon for item in order.order_addons.select_related("addon")]
                try:
                    deployment_change_build(
                        deployment_id=order.deployment_id,
                        spec=plan_panel_spec(plan, addons),
                        plan_slug=plan.slug,
                        plan_name=plan.name,
                        actor=Actor.staff(request.user),
                    )
                    self.message_user(request, f"{order}: now {plan.name}.", messages.SUCCESS)
                except ApplicationError as exc:
                    self.message_user(request, f"{order}: {exc.message}", messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Change plan",
            "objects": [order.deployment for order in queryset.select_related("deployment")],
            "form": form,
            "action": "change_plan",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/provisioning/action_form.html", context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are placed by customers (or the API on their behalf)

    @admin.action(permissions=["change"], description="Cancel selected unpaid orders")
    def cancel_unpaid_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        actor = Actor.staff(request.user)
        for order in queryset:
            try:
                order_cancel(order_id=order.pk, actor=actor, reason="Cancelled by staff")
                self.message_user(request, f"{order} cancelled.", messages.SUCCESS)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ("kind", "description", "quantity", "unit_amount", "amount")
    readonly_fields = fields


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("created_at", "provider", "amount", "currency", "reference", "status", "actor_label")
    readonly_fields = fields


class InvoiceEventInline(StatusEventInline):
    model = InvoiceEvent


class MoveLocationForm(forms.Form):
    location = forms.ModelChoiceField(
        queryset=Location.objects.filter(is_active=True),
        help_text="Checked for room when you apply; a full location is refused.",
    )
    reason = forms.CharField(required=False, max_length=500)


class RefundForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        help_text="Shown to the customer, e.g. 'No room in eu for the next weeks'.",
    )


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.filter(is_active=True))


class ConfirmPaymentForm(forms.Form):
    reference = forms.CharField(
        max_length=255, help_text="Bank transfer reference as it appears on the statement"
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(Invoice)
class InvoiceAdmin(NoDeleteAdmin):
    list_display = (
        "number",
        "customer",
        "order",
        "kind",
        "status",
        "total",
        "currency",
        "issued_at",
        "due_date",
        "paid_at",
    )
    list_filter = (
        "status",
        "kind",
        indexed_values_filter("currency", "currency"),
        ("issued_at", admin.DateFieldListFilter),
        ("due_date", admin.DateFieldListFilter),
    )
    search_fields = ("number", "customer__username", "customer__email", "order__id")
    list_select_related = ("customer", "order")
    show_full_result_count = False
    readonly_fields = (
        "number",
        "customer",
        "order",
        "deployment",
        "kind",
        "currency",
        "subtotal",
        "discount_total",
        "total",
        "status",
        "issued_at",
        "due_date",
        "paid_at",
        "period_start",
        "period_end",
    )
    inlines = [InvoiceLineInline, PaymentInline, InvoiceEventInline]
    actions = ["confirm_manual_payment"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(
        permissions=["change"], description="Confirm manual payment (bank transfer received)"
    )
    def confirm_manual_payment(
        self, request: HttpRequest, queryset: QuerySet[Invoice]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Confirm one invoice at a time.", messages.ERROR)
            return None
        invoice = queryset.get()
        form = ConfirmPaymentForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            try:
                payment_record_manual(
                    invoice_id=invoice.pk,
                    reference=form.cleaned_data["reference"],
                    note=form.cleaned_data["note"],
                    actor=Actor.staff(request.user),
                )
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Invoice {invoice.number} marked paid; its order is confirmed and handed "
                    "to provisioning.",
                    messages.SUCCESS,
                )
            return None
        return TemplateResponse(
            request,
            "admin/billing/invoice/confirm_payment.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Confirm payment of {invoice.number}",
                "invoice": invoice,
                "form": form,
                "opts": self.model._meta,
                "action": "confirm_manual_payment",
            },
        )


@admin.register(InvoiceSequence)
class InvoiceSequenceAdmin(ReadOnlyAdmin):
    list_display = ("year", "last_number")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "invoice",
        "provider",
        "amount",
        "currency",
        "reference",
        "status",
        "actor_label",
        "created_at",
    )
    list_filter = ("provider", "status", "currency")
    search_fields = ("reference", "invoice__number")


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_session_id",
        "invoice",
        "status",
        "amount_minor",
        "currency",
        "expires_at",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("stripe_session_id", "invoice__number")
    exclude = ("url",)  # the checkout URL is a bearer link to pay; not needed in lists


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "status", "invoice", "received_at", "message")
    list_filter = ("status", "type", "livemode")
    search_fields = ("event_id", "invoice__number", "message")
