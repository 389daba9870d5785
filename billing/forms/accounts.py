"""Account forms: sign-up and profile (shape input only; the services validate)."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from billing.models.accounts import (
    ADDRESS_LINE_MAX,
    CITY_MAX,
    COMPANY_NAME_MAX,
    POSTCODE_MAX,
    REGION_MAX,
    TAX_ID_MAX,
)
from notifications.models import Channel, Language
from notifications.selectors import customer_event_specs

WHATSAPP_FIELDS = ("whatsapp_number", "whatsapp_consent", "notify_by_whatsapp")


def whatsapp_enabled() -> bool:
    return bool(settings.WHATSAPP_ENABLED)


def _channel_choices() -> list[tuple[str, str]]:
    """The channels a customer may choose: WhatsApp only while the channel is enabled."""
    return [
        (value, label)
        for value, label in Channel.choices
        if value != Channel.WHATSAPP or whatsapp_enabled()
    ]


class EmailLoginForm(AuthenticationForm):
    """Django's login form, asking for the e-mail address (the login of customer accounts).

    The address is matched case-insensitively: it is replaced by the stored login when exactly
    one account has it, so "Alice@Example.com" logs in as "alice@example.com" (and is counted
    by the lockout as the same account)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.label = _("E-mail address")
        field.widget.attrs.update({"autocomplete": "email", "inputmode": "email"})

    def clean(self) -> dict[str, Any]:
        typed = (self.cleaned_data.get("username") or "").strip()
        if typed:
            matches = list(
                get_user_model()
                .objects.filter(username__iexact=typed)
                .values_list("username", flat=True)[:2]
            )
            self.cleaned_data["username"] = matches[0] if len(matches) == 1 else typed
        return super().clean()


class SignupForm(forms.Form):
    full_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    password_again = forms.CharField(widget=forms.PasswordInput, strip=False)
    whatsapp_number = forms.CharField(
        max_length=32, required=False, help_text="With country code, e.g. +6281234567890"
    )
    whatsapp_consent = forms.BooleanField(
        required=False, label="Send me server and billing messages on WhatsApp"
    )
    preferred_language = forms.ChoiceField(choices=Language.choices, initial=Language.ENGLISH)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not whatsapp_enabled():
            # Submitted values are ignored: cleaned_data then has the defaults ("", False).
            for name in ("whatsapp_number", "whatsapp_consent"):
                del self.fields[name]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data.setdefault("whatsapp_number", "")
        data.setdefault("whatsapp_consent", False)
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


class ProfileForm(forms.Form):
    whatsapp_number = forms.CharField(
        max_length=32,
        required=False,
        label="WhatsApp number",
        help_text="With country code, e.g. +6281234567890",
    )
    whatsapp_consent = forms.BooleanField(required=False, label="I agree to WhatsApp messages")
    preferred_language = forms.ChoiceField(choices=Language.choices)
    notify_by_email = forms.BooleanField(required=False, label="E-mail me")
    notify_by_whatsapp = forms.BooleanField(required=False, label="WhatsApp me")

    def __init__(
        self,
        *args: Any,
        event_channels: dict[str, list[str]],
        default_channels: list[str],
        **kwargs: Any,
    ) -> None:
        """Adds one "which channels" field per customer message.

        While WhatsApp is disabled its fields and choices are left out, so a submitted
        "whatsapp" is refused as an invalid choice; the stored WhatsApp settings are kept."""
        super().__init__(*args, **kwargs)
        self.whatsapp = whatsapp_enabled()
        if not self.whatsapp:
            for name in WHATSAPP_FIELDS:
                del self.fields[name]
        self.stored_channels = event_channels
        self.event_fields: dict[str, str] = {}
        for spec in customer_event_specs():
            name = f"channels_{spec.event}"
            label = spec.event.replace("_", " ").capitalize()
            self.fields[name] = forms.MultipleChoiceField(
                choices=_channel_choices(),
                required=False,
                widget=forms.CheckboxSelectMultiple,
                label=label
                + (" (always e-mailed if nothing else works)" if spec.essential else ""),
                initial=[
                    c
                    for c in event_channels.get(spec.event, default_channels)
                    if c != Channel.WHATSAPP or self.whatsapp
                ],
            )
            self.event_fields[spec.event] = name

    def profile_data(self) -> dict[str, Any]:
        return {k: v for k, v in self.cleaned_data.items() if not k.startswith("channels_")}

    def event_choices(self) -> dict[str, list[str]]:
        """The channels per message (the page shows every message, so all are answered).

        While WhatsApp is disabled, a stored WhatsApp choice is kept as it was."""
        choices = {}
        for event, name in self.event_fields.items():
            channels = list(self.cleaned_data[name])
            if not self.whatsapp and Channel.WHATSAPP in self.stored_channels.get(event, []):
                channels.append(Channel.WHATSAPP)
            choices[event] = channels
        return choices


class NameForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)


class EmailChangeForm(forms.Form):
    new_email = forms.EmailField(label=_("New e-mail address"), max_length=254)
    password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def _country_choices() -> list[tuple[str, str]]:
    return [("", _("(not given)")), *((code, str(name)) for code, name in countries)]


class BillingProfileForm(forms.Form):
    """The "Bill to" block of invoices (the service checks lengths and the country again)."""

    company_name = forms.CharField(
        label=_("Company name"), max_length=COMPANY_NAME_MAX, required=False
    )
    address_line1 = forms.CharField(label=_("Address"), max_length=ADDRESS_LINE_MAX, required=False)
    address_line2 = forms.CharField(
        label=_("Address (line 2)"), max_length=ADDRESS_LINE_MAX, required=False
    )
    city = forms.CharField(label=_("City"), max_length=CITY_MAX, required=False)
    postcode = forms.CharField(label=_("Postcode"), max_length=POSTCODE_MAX, required=False)
    region = forms.CharField(label=_("Region / province"), max_length=REGION_MAX, required=False)
    country = forms.ChoiceField(label=_("Country"), choices=_country_choices, required=False)
    tax_id = forms.CharField(
        label=_("Tax ID (e.g. NPWP, VAT number)"), max_length=TAX_ID_MAX, required=False
    )
