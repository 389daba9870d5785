"""The admin's second-factor pages: enter a code, enrol an authenticator, renew recovery codes.

URLs are the admin site's (common.admin_site.PortalAdminSite.get_urls); the rules are in
common.two_factor.
"""

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice

from common.admin_site import session_is_verified
from common.errors import ApplicationError
from common.two_factor import (
    staff_recovery_codes_left,
    staff_recovery_codes_renew,
    staff_second_factor_verify,
    staff_totp_device_get,
    staff_totp_enrolment_confirm,
    staff_totp_enrolment_device,
    totp_qr_svg_data_uri,
    totp_secret_base32,
)


class CodeForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )


def _next(request: HttpRequest) -> str:
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _with_next(name: str, request: HttpRequest) -> str:
    return f"{reverse(name)}?{urlencode({REDIRECT_FIELD_NAME: _next(request)})}"


def _staff(request: HttpRequest) -> bool:
    user = request.user
    return user.is_authenticated and user.is_active and user.is_staff


def _context(request: HttpRequest, **extra: object) -> dict:
    return {
        **admin.site.each_context(request),
        "next": _next(request),
        "username": request.user.get_username(),
        **extra,
    }


def _verified(request: HttpRequest, device: Device) -> None:
    otp_login(request, device)
    # A new session key for the now privileged session (no fixation across the second step).
    request.session.cycle_key()


def _add_errors(form: forms.Form, exc: ApplicationError) -> None:
    for message in exc.field_errors.get("token", [exc.message]):
        form.add_error("token", message)


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    if not _staff(request):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if session_is_verified(request):
        return redirect(_next(request))
    if staff_totp_device_get(user=request.user) is None:
        return redirect(_with_next("admin:two_factor_enrol", request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = staff_second_factor_verify(user=request.user, token=form.cleaned_data["token"])
        except ApplicationError as exc:
            _add_errors(form, exc)
        else:
            _verified(request, device)
            if isinstance(device, StaticDevice):
                left = staff_recovery_codes_left(user=request.user)
                messages.warning(
                    request,
                    f"You used a recovery code; {left} left. Renew them under "
                    "Two-factor recovery codes if you are running low.",
                )
            return redirect(_next(request))
    return render(
        request, "admin/otp/verify.html", _context(request, form=form, title="Two-factor check")
    )


@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    if not _staff(request):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if staff_totp_device_get(user=request.user) is not None:
        # Replacing an authenticator needs the old one (or staff deleting it in the admin).
        return redirect(_with_next("admin:two_factor", request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = staff_totp_enrolment_confirm(
                user=request.user, token=form.cleaned_data["token"]
            )
        except ApplicationError as exc:
            _add_errors(form, exc)
        else:
            _verified(request, device)
            return _show_codes(request, codes)
    device = staff_totp_enrolment_device(user=request.user)
    context = _context(
        request,
        form=form,
        title="Set up two-factor authentication",
        qr_data_uri=totp_qr_svg_data_uri(device=device),
        secret=totp_secret_base32(device=device),
        otpauth_uri=device.config_url,
    )
    return render(request, "admin/otp/enrol.html", context)


@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """Verified staff only (admin_view): renewing replaces every old code."""
    if request.method == "POST":
        return _show_codes(request, staff_recovery_codes_renew(user=request.user))
    left = staff_recovery_codes_left(user=request.user)
    return render(
        request,
        "admin/otp/recovery_codes.html",
        _context(request, left=left, title="Two-factor recovery codes"),
    )


def _show_codes(request: HttpRequest, codes: list[str]) -> HttpResponse:
    # Rendered in the POST's own response, never stored for a later page: shown once.
    return render(
        request,
        "admin/otp/recovery_codes.html",
        _context(request, codes=codes, title="Your recovery codes"),
    )
