"""Our admin site: Django's, plus a second factor for staff (config/settings/auth.py).

The password step is the admin's usual login form (so axes counts its failures). A staff
session that passed it but not the second factor is sent to the code page, or to enrolment if
the user has no authenticator yet; only a session verified by django-otp (a TOTP code or a
recovery code) has admin permission. OTP_ADMIN_REQUIRED=false skips the second step.
"""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, URLResolver, path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect


class PortalAdminConfig(AdminConfig):
    """django.contrib.admin with PortalAdminSite as `admin.site`."""

    default_site = "common.admin_site.PortalAdminSite"


def session_is_verified(request: HttpRequest) -> bool:
    """django-otp verified this session (its middleware adds `is_verified` to the user)."""
    is_verified = getattr(request.user, "is_verified", None)
    return bool(is_verified and is_verified())


def second_factor_due(request: HttpRequest) -> bool:
    """Staff who passed the password step and still owe the code."""
    user = request.user
    return (
        settings.OTP_ADMIN_REQUIRED
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and not session_is_verified(request)
    )


@dataclass(frozen=True)
class AdminPage:
    """An admin page that is no model's (e.g. billing's analytics), linked from the index."""

    route: str
    view: Callable[..., HttpResponse]
    name: str
    title: str


class PortalAdminSite(admin.AdminSite):
    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        # Registered by the app that owns the page (common imports no app above it).
        self.extra_pages: list[AdminPage] = []

    def register_page(
        self, route: str, view: Callable[..., HttpResponse], *, name: str, title: str
    ) -> None:
        """Serve `view` at admin/<route> as admin:<name> (staff with the second factor only,
        as every admin page) and link it from the index under `title`."""
        if any(page.name == name for page in self.extra_pages):
            return  # the admin modules were imported again (autodiscover): already there
        self.extra_pages.append(AdminPage(route=route, view=view, name=name, title=title))

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        pages = [
            {"title": page.title, "url": reverse(f"{self.name}:{page.name}")}
            for page in self.extra_pages
        ]
        return super().index(request, {"extra_pages": pages, **(extra_context or {})})

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not settings.OTP_ADMIN_REQUIRED or session_is_verified(request)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if second_factor_due(request):
            return self._to_second_factor(request)
        response = super().login(request, extra_context)
        # A successful password POST logged the user in: straight on to the second step.
        if request.method == "POST" and second_factor_due(request):
            return self._to_second_factor(request)
        return response

    def _to_second_factor(self, request: HttpRequest) -> HttpResponseRedirect:
        target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
        url = reverse("admin:two_factor", current_app=self.name)
        if target:
            url += "?" + urlencode({REDIRECT_FIELD_NAME: target})
        return HttpResponseRedirect(url)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from common import two_factor_views as views

        def pending(view):  # the password step is done, the code is not: no admin_view
            return never_cache(csrf_protect(view))

        return [
            path("two-factor/", pending(views.verify), name="two_factor"),
            path("two-factor/enrol/", pending(views.enrol), name="two_factor_enrol"),
            path(
                "two-factor/recovery-codes/",
                self.admin_view(views.recovery_codes),
                name="two_factor_recovery_codes",
            ),
            *(
                path(page.route, self.admin_view(page.view), name=page.name)
                for page in self.extra_pages
            ),
            *super().get_urls(),
        ]
