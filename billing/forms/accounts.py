"""Account forms: sign-up and profile (shape input only; the services validate)."""

from typing import Any

from django import forms

from notifications.models import Channel, Language
from notifications.selectors import customer_event_specs


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

    def clean(self) -> dict[str, Any]:
        data = super().clean()
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
        """Adds one "which channels" field per customer message."""
        super().__init__(*args, **kwargs)
        self.event_fields: dict[str, str] = {}
        for spec in customer_event_specs():
            name = f"channels_{spec.event}"
            label = spec.event.replace("_", " ").capitalize()
            self.fields[name] = forms.MultipleChoiceField(
                choices=Channel.choices,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                label=label
                + (" (always e-mailed if nothing else works)" if spec.essential else ""),
                initial=event_channels.get(spec.event, default_channels),
            )
            self.event_fields[spec.event] = name

    def profile_data(self) -> dict[str, Any]:
        return {k: v for k, v in self.cleaned_data.items() if not k.startswith("channels_")}

    def event_choices(self) -> dict[str, list[str]]:
        """The channels per message (the page shows every message, so all are answered)."""
        return {event: self.cleaned_data[name] for event, name in self.event_fields.items()}
