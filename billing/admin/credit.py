"""Account credit: the ledger (read-only, fleet-sized) and the staff adjustment form.

Rows are only ever written by billing.services.credit: the "Add" page of the ledger is the
staff adjustment form (credit_staff_adjust: signed amount, currency, a required reason), which
refuses taking the balance below zero as a form error.
"""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from billing.models import CreditEntry
from billing.services.credit import credit_staff_adjust
from common.actors import Actor
from common.admin import NoDeleteAdmin
from common.errors import ApplicationError
from common.money import SUPPORTED_CURRENCIES


class CurrencyFilter(admin.SimpleListFilter):
    """The sold currencies as fixed choices: no query for the filter's choices."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(c, c) for c in SUPPORTED_CURRENCIES]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        return queryset.filter(currency=value) if value else queryset


class CreditAdjustmentForm(forms.Form):
    customer_email = forms.EmailField(label="Customer e-mail")
    currency = forms.ChoiceField(choices=[(c, c) for c in SUPPORTED_CURRENCIES])
    amount = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        help_text="Positive adds credit; negative takes it back (never below zero).",
    )
    reason = forms.CharField(
        max_length=255, help_text="Shown in the customer's credit history and the message."
    )

    def clean_customer_email(self) -> Any:
        email = self.cleaned_data["customer_email"].strip()
        customer = get_user_model().objects.filter(email__iexact=email).order_by("pk").first()
        if customer is None:
            raise forms.ValidationError("No customer has this e-mail address.")
        self.customer = customer
        return email


@admin.register(CreditEntry)
class CreditEntryAdmin(NoDeleteAdmin):
    list_display = (
        "created_at",
        "customer",
        "kind",
        "amount",
        "currency",
        "balance_after",
        "invoice",
        "description",
        "actor_label",
    )
    list_filter = ("kind", CurrencyFilter)
    search_fields = ("customer__email",)
    list_select_related = ("customer", "invoice")
    # The primary key's index: newest first without sorting the ledger.
    ordering = ("-id",)
    show_full_result_count = False
    readonly_fields = (
        "customer",
        "currency",
        "amount",
        "balance_after",
        "kind",
        "invoice",
        "description",
        "recorded_by",
        "actor_label",
        "created_at",
    )

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """The staff adjustment form (the ledger's only hand-written rows)."""
        if not self.has_add_permission(request):
            return super().add_view(request, form_url, extra_context)  # Django's 403
        form = CreditAdjustmentForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                entry = credit_staff_adjust(
                    customer_id=form.customer.pk,
                    currency=data["currency"],
                    amount=Decimal(data["amount"]),
                    reason=data["reason"],
                    actor=Actor.staff(request.user),
                )
            except ApplicationError as exc:
                for field, errors in (exc.field_errors or {None: [exc.message]}).items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                self.message_user(
                    request,
                    f"{entry.amount:+} {entry.currency} for {form.customer}: the balance is now "
                    f"{entry.balance_after} {entry.currency}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:billing_creditentry_changelist"))
        return TemplateResponse(
            request,
            "admin/billing/creditentry/adjust.html",
            {
                **self.admin_site.each_context(request),
                "title": "Adjust a customer's account credit",
                "form": form,
                "opts": self.model._meta,
            },
            status=400 if form.is_bound and form.errors else 200,
        )
