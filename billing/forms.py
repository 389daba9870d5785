"""Web forms. They only shape input; the services validate business rules."""

from typing import Any

from django import forms
from django.contrib.auth.models import User

from billing.models import BillingCycle, Plan
from billing.selectors import LocationOffer
from common.errors import ApplicationError
from notifications.models import Channel, Language
from notifications.selectors import customer_event_specs
from servers.selectors import egg_variable_rules


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


class OrderConfigureForm(forms.Form):
    """Cycle, location, add-ons, coupon, server name and the egg's editable variables."""

    billing_cycle = forms.ChoiceField(choices=BillingCycle.choices)
    location = forms.ChoiceField()
    addons = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    coupon = forms.CharField(max_length=40, required=False)
    server_name = forms.CharField(max_length=191, required=False)

    def __init__(
        self,
        *args: Any,
        plan: Plan,
        addon_choices: list[tuple[str, str]],
        locations: list[LocationOffer],
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self.plan = plan
        offered = {price.billing_cycle for price in plan.prices.all()}
        self.fields["billing_cycle"].choices = [
            (value, label) for value, label in BillingCycle.choices if value in offered
        ]
        # A sold-out location stays listed, marked: the order service refuses it with the
        # reason on this field (and checks again at checkout, where the room is taken).
        self.fields["location"].choices = [
            (offer.location.short_code, f"{offer.location} (sold out)")
            if offer.sold_out
            else (offer.location.short_code, str(offer.location))
            for offer in locations
        ]
        available = [offer for offer in locations if offer.available]
        if available:
            self.fields["location"].initial = available[0].location.short_code
        self.fields["addons"].choices = addon_choices
        self.variable_fields: list[str] = []
        for rule in egg_variable_rules(egg_panel_id=plan.egg_id) or []:
            if not (rule.user_editable and rule.user_viewable):
                continue
            name = f"var_{rule.env_variable}"
            self.fields[name] = forms.CharField(
                label=rule.name,
                required=False,
                initial=plan.environment.get(rule.env_variable, rule.default_value),
                help_text=rule.rules,
                max_length=1024,
            )
            self.variable_fields.append(name)

    def variables(self) -> dict[str, str]:
        return {
            name.removeprefix("var_"): self.cleaned_data[name]
            for name in self.variable_fields
            if self.cleaned_data.get(name) not in (None, "")
        }

    def service_arguments(self, customer: User) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "customer": customer,
            "plan_slug": self.plan.slug,
            "billing_cycle": data["billing_cycle"],
            "location_code": data["location"],
            "addon_slugs": data["addons"],
            "coupon_code": data["coupon"],
            "server_name": data["server_name"],
            "variables": self.variables(),
        }


def add_service_errors(form: forms.Form, error: ApplicationError) -> None:
    """Show a service's field errors on the matching form fields (others on the form)."""
    if not error.field_errors:
        form.add_error(None, error.message)
        return
    for field, messages in error.field_errors.items():
        name = field
        if field.startswith("variables."):
            name = f"var_{field.removeprefix('variables.')}"
        target = name if name in form.fields else None
        for message in messages:
            form.add_error(target, message)
