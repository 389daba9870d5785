"""Sign up (confirmed by e-mail) and profile. Log in/out and password reset are Django's."""

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from billing.forms import ProfileForm, SignupForm, add_service_errors
from billing.services.customers import (
    customer_register,
    customer_signup_confirm,
    customer_signup_pending_get,
)
from common.errors import ApplicationError
from notifications.selectors import customer_profile_get
from notifications.services import customer_event_channels_set, customer_profile_upsert


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            customer_register(
                email=data["email"],
                password=data["password"],
                full_name=data["full_name"],
                whatsapp_number=data["whatsapp_number"],
                whatsapp_consent=data["whatsapp_consent"],
                preferred_language=data["preferred_language"],
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            # The same answer whether or not the address has an account (the e-mail differs).
            return redirect("signup-done")
    return render(request, "registration/signup.html", {"form": form})


@require_http_methods(["GET"])
def signup_done(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/signup_done.html")


class SignupConfirmForm(forms.Form):
    password = forms.CharField(widget=forms.PasswordInput, strip=False)


@never_cache
@require_http_methods(["GET", "POST"])
def signup_confirm(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The e-mailed link: the password chosen at sign-up activates the account."""
    pending = customer_signup_pending_get(uidb64=uidb64, token=token)
    form = SignupConfirmForm(request.POST or None)
    if pending is not None and request.method == "POST" and form.is_valid():
        try:
            user = customer_signup_confirm(
                uidb64=uidb64, token=token, password=form.cleaned_data["password"]
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome! Your account is ready.")
            return redirect("plan-list")
    context = {
        "form": form,
        "validlink": pending is not None,
        "email": pending.email if pending else "",
    }
    return render(request, "registration/signup_confirm.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    current = customer_profile_get(user=request.user)
    initial = {
        "whatsapp_number": current.whatsapp_number if current else "",
        "whatsapp_consent": current.whatsapp_consent if current else False,
        "preferred_language": current.preferred_language if current else "en",
        "notify_by_email": current.notify_by_email if current else True,
        "notify_by_whatsapp": current.notify_by_whatsapp if current else False,
    }
    event_channels = current.event_channels if current else {}
    default_channels = [
        channel
        for channel, enabled in (
            ("email", initial["notify_by_email"]),
            ("whatsapp", initial["notify_by_whatsapp"]),
        )
        if enabled
    ]
    form = ProfileForm(
        request.POST or None,
        initial=initial,
        event_channels=event_channels,
        default_channels=default_channels,
    )
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                customer_profile_upsert(user=request.user, **form.profile_data())
                for event, channels in form.event_choices().items():
                    customer_event_channels_set(user=request.user, event=event, channels=channels)
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Profile saved.")
            return redirect("profile")
    return render(request, "registration/profile.html", {"form": form})
