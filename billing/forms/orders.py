"""The order form. It only shapes input; the services validate business rules."""

from typing import Any

from django import forms
from django.contrib.auth.models import User

from billing.models import BillingCycle, Plan
from billing.selectors import LocationOffer
from servers.selectors import egg_variable_rules


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
