"""Account history and billing details (read-only: customers change them on their profile)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from billing.models import AccountEvent, AccountEventKind, BillingProfile, VerifiedEmail
from common.admin import ReadOnlyAdmin


class AccountEventKindFilter(admin.SimpleListFilter):
    """The kinds as fixed choices: no query for the filter's choices."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return AccountEventKind.choices

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(kind=value) if value else queryset


@admin.register(AccountEvent)
class AccountEventAdmin(ReadOnlyAdmin):
    """Who changed which account, when: e-mail and password changes, verification, details."""

    list_display = ("created_at", "user", "kind", "actor_label", "data")
    list_filter = (AccountEventKindFilter,)
    search_fields = ("user__email", "user__username", "actor_label")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(BillingProfile)
class BillingProfileAdmin(ReadOnlyAdmin):
    list_display = ("user", "company_name", "country", "tax_id", "updated_at")
    search_fields = ("user__email", "company_name", "tax_id")
    list_select_related = ("user",)


@admin.register(VerifiedEmail)
class VerifiedEmailAdmin(ReadOnlyAdmin):
    list_display = ("email", "user", "verified_at")
    search_fields = ("email", "user__username")
    list_select_related = ("user",)
