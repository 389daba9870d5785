"""Invoices with their lines, payments and history; staff confirm a bank transfer here."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from billing.models import Invoice, InvoiceEvent, InvoiceLine, InvoiceSequence, Payment
from billing.services.credit_refunds import invoice_refund_to_credit
from billing.services.payments import payment_record_manual
from common.actors import Actor
from common.admin import (
    NoDeleteAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    StatusEventInline,
    indexed_values_filter,
)
from common.errors import ApplicationError


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


class ConfirmPaymentForm(forms.Form):
    reference = forms.CharField(
        max_length=255, help_text="Bank transfer reference as it appears on the statement"
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class RefundToCreditForm(forms.Form):
    reason = forms.CharField(
        max_length=500, help_text="Kept in the invoice's history, e.g. 'Outage 3-5 December'."
    )


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
        "credit_applied",
        "total",
        "status",
        "issued_at",
        "due_date",
        "paid_at",
        "period_start",
        "period_end",
    )
    inlines = [InvoiceLineInline, PaymentInline, InvoiceEventInline]
    actions = ["confirm_manual_payment", "refund_to_credit"]

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

    @admin.action(permissions=["change"], description="Refund to account credit (paid invoices)…")
    def refund_to_credit(
        self, request: HttpRequest, queryset: QuerySet[Invoice]
    ) -> HttpResponse | None:
        """The invoice's payment and spent credit go to the customer's account credit, once."""
        form = RefundToCreditForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for invoice in queryset.order_by("pk"):
                try:
                    entry = invoice_refund_to_credit(
                        invoice_id=invoice.pk,
                        actor=Actor.staff(request.user),
                        reason=form.cleaned_data["reason"],
                    )
                except ApplicationError as exc:
                    self.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
                    continue
                self.message_user(
                    request,
                    f"{invoice}: refunded {entry.amount} {entry.currency} to account credit "
                    f"(balance {entry.balance_after} {entry.currency}).",
                    messages.SUCCESS,
                )
            return None
        return TemplateResponse(
            request,
            "admin/provisioning/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": "Refund to account credit",
                "objects": list(queryset.select_related("customer")),
                "form": form,
                "action": "refund_to_credit",
                "opts": self.model._meta,
            },
        )


@admin.register(InvoiceSequence)
class InvoiceSequenceAdmin(ReadOnlyAdmin):
    list_display = ("year", "last_number")
