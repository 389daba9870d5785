import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db import connection, models
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from common.actors import Actor
from common.errors import ApplicationError, NotFoundError
from common.models import ApiToken, ApiTokenScope, JobLease, JobRun, WorkerHeartbeat
from common.tokens import TOKEN_PREFIX, api_token_create, api_token_revoke


def distinct_values(model: type[models.Model], field: str, *, limit: int = 200) -> list[str]:
    """The distinct values of an indexed column, for admin filter choices, without reading the
    table: on PostgreSQL a "loose index scan" (a recursive CTE hopping from one value to the
    next: O(values x log rows)), so a fleet-sized table costs what a small one does."""
    column = model._meta.get_field(field).column
    table = connection.ops.quote_name(model._meta.db_table)
    quoted = connection.ops.quote_name(column)
    if connection.vendor != "postgresql":
        return list(model.objects.order_by(field).values_list(field, flat=True).distinct()[:limit])
    sql = (  # identifiers from model metadata, quoted; no value is interpolated
        f"WITH RECURSIVE hop(v) AS (SELECT MIN({quoted}) FROM {table} "  # noqa: S608
        f"UNION ALL SELECT (SELECT MIN({quoted}) FROM {table} WHERE {quoted} > hop.v) "
        f"FROM hop WHERE hop.v IS NOT NULL) SELECT v FROM hop WHERE v IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def indexed_values_filter(field: str, title: str) -> type[admin.SimpleListFilter]:
    """A list filter whose choices come from `distinct_values` (Django's own filter for a plain
    column reads every row of the table for its choices, on every page)."""

    class IndexedValuesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            return [(v, v) for v in distinct_values(model_admin.model, field)]

        def queryset(self, request, queryset):
            value = self.value()
            return queryset.filter(**{field: value}) if value else queryset

    IndexedValuesFilter.title = title
    IndexedValuesFilter.__name__ = f"IndexedValuesFilter_{field}"
    return IndexedValuesFilter


class ReadOnlyInline(admin.TabularInline):
    """History rows: shown, never edited or deleted from the admin."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class StatusEventInline(ReadOnlyInline):
    fields = ("created_at", "from_status", "to_status", "actor_label", "reason")
    readonly_fields = fields
    ordering = ("created_at", "id")


class NoDeleteAdmin(admin.ModelAdmin):
    """Rows whose deletion would lose money or history, or orphan what exists on the panel
    (deployments, orders, invoices, coupons, the panel mirror): no "Delete selected", no
    delete button. Servers end by the terminate action; orders by cancel or refund."""

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("queue", "hostname", "last_seen_at", "beats")


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    """Every run of a fleet job: `manage.py run_job NAME` and beat's runs alike."""

    list_display = (
        "name",
        "status",
        "dry_run",
        "triggered_by",
        "started_at",
        "duration_ms",
        "counts",
    )
    list_filter = ("name", "status", "dry_run")
    date_hierarchy = "started_at"
    show_full_result_count = False


@admin.register(JobLease)
class JobLeaseAdmin(ReadOnlyAdmin):
    """Job locks where the database has no advisory locks (the SQLite demo)."""

    list_display = ("name", "holder", "expires_at")


class ApiTokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        live = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        if self.value() == "active":
            return queryset.filter(live, revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


class ApiTokenScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(ApiTokenScope.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value not in ApiTokenScope.values:
            return queryset
        if connection.vendor == "postgresql":
            return queryset.filter(scopes__contains=[value])
        # SQLite (the demo) has no JSON containment: its few tokens are filtered here.
        ids = [pk for pk, scopes in queryset.values_list("pk", "scopes") if value in scopes]
        return queryset.filter(pk__in=ids)


class ApiTokenCreateForm(forms.Form):
    """Staff create tokens for staff and integration accounts (is_staff). Not for customers:
    a token made for a customer would let staff act as that customer, with the history
    naming the customer; customers create their own under Account > API tokens."""

    user_login = forms.CharField(label="Staff e-mail or login", max_length=254)
    name = forms.CharField(max_length=100, help_text="What uses the token.")
    scopes = forms.MultipleChoiceField(
        choices=ApiTokenScope.choices,
        initial=[ApiTokenScope.READ.value],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Every token reads. Provisioning and billing are for staff accounts only.",
    )
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        initial=90,
        help_text="Empty: the token never expires.",
    )

    def clean_user_login(self) -> str:
        login = self.cleaned_data["user_login"].strip()
        users = list(
            get_user_model()
            .objects.filter(Q(username__iexact=login) | Q(email__iexact=login))
            .order_by("pk")[:2]
        )
        if not users:
            raise forms.ValidationError("No account has this e-mail address or login.")
        if len(users) > 1:
            raise forms.ValidationError("More than one account matches: give the exact login.")
        if not users[0].is_staff:
            raise forms.ValidationError(
                "Tokens made here are for staff and integration accounts; a customer creates "
                "their own under Account > API tokens."
            )
        self.user = users[0]
        return login

    def expires_at(self) -> dt.datetime | None:
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + dt.timedelta(days=days) if days else None


@admin.register(ApiToken)
class ApiTokenAdmin(NoDeleteAdmin):
    """API tokens: listed without their digest, created on the add page (the token is shown
    once, on the response page), revoked by an action. Never edited, never deleted: a token's
    row is the history of what it could do and who made and revoked it."""

    list_display = (
        "user",
        "name",
        "public_prefix",
        "scopes",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (ApiTokenStatusFilter, ApiTokenScopeFilter, "user__is_staff")
    search_fields = ("user__email", "user__username", "prefix", "name")
    list_select_related = ("user",)
    ordering = ("-created_at", "-id")
    actions = ("revoke_selected",)
    # The digest is not among them: it is never shown.
    fields = (
        "user",
        "name",
        "public_prefix",
        "scopes",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
        "revoked_by",
    )
    readonly_fields = fields

    @admin.display(description="prefix", ordering="prefix")
    def public_prefix(self, obj: ApiToken) -> str:
        return f"{TOKEN_PREFIX}{obj.prefix}…"

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # the page is read-only; revoking is the action below

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("common.change_apitoken")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        # A pasted token or "gsp_<prefix>…" finds its row by the public prefix alone.
        term = search_term.strip()
        if term.startswith(TOKEN_PREFIX):
            term = term[len(TOKEN_PREFIX) :].partition("_")[0].rstrip("…")
        return super().get_search_results(request, queryset, term)

    @admin.action(permissions=["revoke"], description="Revoke selected tokens")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = Actor.staff(request.user)
        revoked = 0
        for token_id in queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True):
            try:
                token = api_token_revoke(token_id=token_id, actor=actor)
            except NotFoundError:
                continue
            self.log_change(request, token, "Revoked.")
            revoked += 1
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """The create form; its successful POST renders the token once (not via a message)."""
        if not self.has_add_permission(request):
            return super().add_view(request, form_url, extra_context)  # Django's 403
        form = ApiTokenCreateForm(request.POST if request.method == "POST" else None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Create an API token",
            "opts": self.model._meta,
            "form": form,
        }
        template = "admin/common/apitoken/add.html"
        if request.method == "POST" and form.is_valid():
            try:
                created = api_token_create(
                    user=form.user,
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    expires_at=form.expires_at(),
                    actor=Actor.staff(request.user),
                )
            except ApplicationError as exc:
                for field, errors in (exc.field_errors or {None: [exc.message]}).items():
                    target = "expires_in_days" if field == "expires_at" else field
                    for error in errors:
                        form.add_error(target if target in form.fields else None, error)
            else:
                self.log_addition(request, created.token, "Created.")
                template = "admin/common/apitoken/created.html"
                context.update(title="API token created", created=created)
        response = TemplateResponse(
            request,
            template,
            context,
            status=400 if form.is_bound and form.errors else 200,
        )
        add_never_cache_headers(response)  # the page holds the only copy of the token
        return response
