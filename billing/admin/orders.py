"""Orders with their add-ons, invoices, history and provisioning timeline, and the staff
actions on them: cancel unpaid, change plan, move or refund an order waiting for capacity."""

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from billing.models import Invoice, Order, OrderAddon, OrderEvent, PaymentProvider, Plan
from billing.services.orders import order_cancel
from billing.services.plan_changes import order_plan_change
from billing.services.waiting_orders import order_move_location, order_refund
from common.actors import Actor
from common.admin import NoDeleteAdmin, ReadOnlyInline, StatusEventInline, indexed_values_filter
from common.errors import ApplicationError
from common.logging import mask_secret_values
from provisioning.admin import provisioning_timeline_html
from provisioning.models import ProvisioningRun, RunStatus
from servers.models import Location

# The staff actions' confirmation page (shared with provisioning's admin actions).
ACTION_FORM_TEMPLATE = "admin/provisioning/action_form.html"


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
    plan = forms.ModelChoiceField(queryset=Plan.objects.none())

    def __init__(self, *args: Any, plans: QuerySet[Plan], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the servers' egg family (billing.selectors.plan_family): no bot tiers for a
        # Minecraft server.
        self.fields["plan"].queryset = plans


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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are placed by customers (or the API on their behalf)

    @admin.display(description="Variables")
    def variables_masked(self, order: Order) -> object:
        return mask_secret_values(order.variables)

    @admin.display(description="Provisioning")
    def provisioning_timeline(self, order: Order) -> str:
        return provisioning_timeline_html(order.deployment_id)

    @admin.action(permissions=["change"], description="Cancel selected unpaid orders")
    def cancel_unpaid_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        actor = Actor.staff(request.user)
        for order in queryset:
            try:
                order_cancel(order_id=order.pk, actor=actor, reason="Cancelled by staff")
                self.message_user(request, f"{order} cancelled.", messages.SUCCESS)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    @admin.action(
        permissions=["change"], description="Change plan (apply new limits on the panel)…"
    )
    def change_plan(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        current = Plan.objects.filter(
            slug__in=queryset.values("deployment__plan_slug")
        ).values_list("category", "nest_id")
        families = set(current)
        if len(families) != 1:
            self.message_user(
                request,
                "Select servers whose plans are of one kind (same category and egg family).",
                messages.ERROR,
            )
            return None
        category, nest_id = families.pop()
        plans = Plan.objects.filter(is_active=True, category=category, nest_id=nest_id)
        form = ChangePlanForm(request.POST if "apply" in request.POST else None, plans=plans)
        if "apply" in request.POST and form.is_valid():
            plan = form.cleaned_data["plan"]
            for order in queryset.select_related("deployment"):
                try:
                    order_plan_change(order=order, plan=plan, actor=Actor.staff(request.user))
                    self.message_user(request, f"{order}: now {plan.name}.", messages.SUCCESS)
                except ApplicationError as exc:
                    self.message_user(request, f"{order}: {exc.message}", messages.ERROR)
            return None
        # The page lists the servers whose limits change.
        servers = [order.deployment for order in queryset.select_related("deployment")]
        return self._action_form(request, servers, form, "change_plan", "Change plan")

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
        return self._action_form(
            request, self._listed(queryset), form, "move_waiting_order", "Move order"
        )

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
                text = ", ".join(f"{r.amount} {r.currency} ({r.provider})" for r in refunds)
                self.message_user(
                    request, f"{order}: cancelled, refunded {text or 'nothing'}.", messages.SUCCESS
                )
                for r in refunds:
                    if r.provider == PaymentProvider.MANUAL:  # staff pay it out by hand
                        self.message_user(
                            request,
                            f"{order}: pay {r.amount} {r.currency} back by bank transfer "
                            f"(paid with reference {r.reference or '-'}).",
                            messages.WARNING,
                        )
            return None
        return self._action_form(
            request, self._listed(queryset), form, "refund_unprovisioned", "Refund"
        )

    @staticmethod
    def _listed(queryset: QuerySet[Order]) -> list[Order]:
        return list(queryset.select_related("customer", "plan", "location"))

    def _action_form(
        self,
        request: HttpRequest,
        objects: Sequence[object],
        form: forms.Form,
        action: str,
        title: str,
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "objects": objects,
            "form": form,
            "action": action,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, ACTION_FORM_TEMPLATE, context)
