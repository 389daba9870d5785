"""Sign up (confirmed by e-mail), profile and account settings (name, billing details, e-mail,
password). Log in/out and password reset are Django's views with our forms and templates."""

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from billing.forms import ProfileForm, SignupForm, add_service_errors
from billing.forms.accounts import (
    WHATSAPP_FIELDS,
    BillingProfileForm,
    EmailChangeForm,
    EmailLoginForm,
    NameForm,
    whatsapp_enabled,
)
from billing.models import BillingProfile
from billing.services.accounts import (
    BILLING_FIELDS,
    account_email_change_confirm,
    account_email_change_pending_get,
    account_email_change_request,
    account_email_is_verified,
    account_email_verify,
    account_name_update,
    account_password_changed,
    account_verification_send,
    billing_profile_update,
)
from billing.services.customers import (
    customer_register,
    customer_signup_confirm,
    customer_signup_pending_get,
)
from common.actors import Actor
from common.errors import ApplicationError
from notifications.models import CustomerProfile
from notifications.selectors import customer_profile_get
from notifications.services import (
    customer_event_channels_set,
    customer_profile_upsert,
    whatsapp_verification_start,
)


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


def _profile_page(request: HttpRequest, **forms_: Form) -> HttpResponse:
    """The profile page with its forms (one submitted, with its errors; the others fresh)."""
    user = request.user
    billing = BillingProfile.objects.filter(user=user).first()
    current = customer_profile_get(user=user)  # one read for both sections below
    context: dict[str, Any] = {
        "form": forms_.get("form") or _notification_form(request, data=None, current=current),
        "name_form": forms_.get("name_form")
        or NameForm(initial={"first_name": user.first_name, "last_name": user.last_name}),
        "billing_form": forms_.get("billing_form")
        or BillingProfileForm(
            initial={name: getattr(billing, name) for name in BILLING_FIELDS} if billing else None
        ),
        "email_form": forms_.get("email_form") or EmailChangeForm(),
        "email_verified": account_email_is_verified(user=user),
        # The WhatsApp commands section: only with WhatsApp on and a number saved.
        "whatsapp_profile": (
            current
            if whatsapp_enabled() and current is not None and current.whatsapp_number
            else None
        ),
    }
    return render(request, "registration/profile.html", context)


def _notification_form(
    request: HttpRequest, *, data: Any, current: CustomerProfile | None = None
) -> ProfileForm:
    if current is None:
        current = customer_profile_get(user=request.user)
    initial = {
        "whatsapp_number": current.whatsapp_number if current else "",
        "whatsapp_consent": current.whatsapp_consent if current else False,
        "preferred_language": current.preferred_language if current else "en",
        "notify_by_email": current.notify_by_email if current else True,
        "notify_by_whatsapp": current.notify_by_whatsapp if current else False,
    }
    default_channels = [
        channel
        for channel, enabled in (
            ("email", initial["notify_by_email"]),
            ("whatsapp", initial["notify_by_whatsapp"]),
        )
        if enabled
    ]
    form = ProfileForm(
        data,
        initial=initial,
        event_channels=current.event_channels if current else {},
        default_channels=default_channels,
    )
    form.stored_profile = initial  # type: ignore[attr-defined]
    return form


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """The profile page; its POST saves the language and the notification choices."""
    if request.method != "POST":
        return _profile_page(request)
    form = _notification_form(request, data=request.POST)
    if form.is_valid():
        data = form.profile_data()
        if not form.whatsapp:
            # WhatsApp is disabled: its settings are not on the page and stay as stored.
            data.update({name: form.stored_profile[name] for name in WHATSAPP_FIELDS})
        try:
            with transaction.atomic():
                customer_profile_upsert(user=request.user, **data)
                for event, channels in form.event_choices().items():
                    customer_event_channels_set(user=request.user, event=event, channels=channels)
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Profile saved."))
            return redirect("profile")
    return _profile_page(request, form=form)


def _profile_section_save(
    request: HttpRequest,
    *,
    form: forms.Form,
    save: Callable[..., object],
    saved_message: str,
    form_key: str,
) -> HttpResponse:
    """One section of the profile page: validate, save through the service, or show the page
    again with this section's errors (the other sections unchanged)."""
    if form.is_valid():
        try:
            save(user=request.user, actor=Actor.for_user(request.user), **form.cleaned_data)
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, saved_message)
            return redirect("profile")
    return _profile_page(request, **{form_key: form})


@login_required
@require_http_methods(["POST"])
def profile_name(request: HttpRequest) -> HttpResponse:
    return _profile_section_save(
        request,
        form=NameForm(request.POST),
        save=account_name_update,
        saved_message=_("Name saved."),
        form_key="name_form",
    )


@never_cache
@login_required
@require_http_methods(["POST"])
def profile_whatsapp_verify(request: HttpRequest) -> HttpResponse:
    """A code to send us from the profile's WhatsApp number (shown on this page only)."""
    if not whatsapp_enabled():
        return redirect("profile")
    try:
        issued = whatsapp_verification_start(user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("profile")
    business_number = settings.WHATSAPP_DISPLAY_NUMBER or settings.SUPPORT_WHATSAPP
    text = f"VERIFY {issued.code}"
    context = {
        "code": issued.code,
        "number": issued.number,
        "expires_at": issued.expires_at,
        "message_text": text,
        "business_number": business_number,
        # wa.me opens the chat with the text typed in, on a phone or WhatsApp Web.
        "wa_link": (
            f"https://wa.me/{business_number.lstrip('+')}?text={quote(text)}"
            if business_number
            else ""
        ),
    }
    return render(request, "registration/whatsapp_verify.html", context)


@login_required
@require_http_methods(["POST"])
def profile_billing(request: HttpRequest) -> HttpResponse:
    return _profile_section_save(
        request,
        form=BillingProfileForm(request.POST),
        save=billing_profile_update,
        saved_message=_("Billing details saved. New invoices will show them."),
        form_key="billing_form",
    )


@login_required
@require_http_methods(["POST"])
def email_change(request: HttpRequest) -> HttpResponse:
    form = EmailChangeForm(request.POST)
    if form.is_valid():
        try:
            account_email_change_request(
                user=request.user,
                new_email=form.cleaned_data["new_email"],
                password=form.cleaned_data["password"],
                actor=Actor.for_user(request.user),
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("We sent a link to %(email)s. Your e-mail changes when you open it.")
                % {"email": form.cleaned_data["new_email"].strip().lower()},
            )
            return redirect("profile")
    return _profile_page(request, email_form=form)


@never_cache
@require_http_methods(["GET", "POST"])
def email_change_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link sent to the new address: a page with a button (link scanners only GET)."""
    pending = account_email_change_pending_get(token=token)
    error = ""
    if pending is not None and request.method == "POST":
        try:
            account_email_change_confirm(token=token)
        except ApplicationError as exc:
            error = exc.message
        else:
            messages.success(
                request, _("Your e-mail address is now %(email)s.") % {"email": pending[1]}
            )
            return redirect("profile" if request.user.is_authenticated else "login")
    context = {
        "validlink": pending is not None,
        "new_email": pending[1] if pending else "",
        "error": error,
    }
    return render(request, "registration/email_change_confirm.html", context)


@login_required
@require_http_methods(["POST"])
def verification_send(request: HttpRequest) -> HttpResponse:
    try:
        sent = account_verification_send(user=request.user, actor=Actor.for_user(request.user))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("profile")
    if sent:
        messages.success(
            request, _("We sent a new link to %(email)s.") % {"email": request.user.email}
        )
    else:
        messages.info(request, _("Your e-mail address is already verified."))
    return redirect("profile")


@never_cache
@require_http_methods(["GET", "POST"])
def email_verify(request: HttpRequest, token: str) -> HttpResponse:
    """The verification link: a page with a button, the POST verifies."""
    error = ""
    if request.method == "POST":
        try:
            account_email_verify(token=token)
        except ApplicationError as exc:
            error = exc.message
        else:
            messages.success(request, _("Thank you: your e-mail address is verified."))
            return redirect("profile" if request.user.is_authenticated else "login")
    return render(request, "registration/email_verify.html", {"error": error})


class LoginView(auth_views.LoginView):
    form_class = EmailLoginForm


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's view (it keeps this session; the other sessions of the user end, because
    Django checks each session against the password hash), recorded and announced."""

    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        account_password_changed(user=form.user, actor=Actor.for_user(form.user))
        return response


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's view; the new password is recorded like a change."""

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        account_password_changed(user=form.user, actor=Actor.for_user(form.user))
        return response
