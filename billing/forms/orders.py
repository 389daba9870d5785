"""The order form. It only shapes input; the services validate business rules."""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from billing.forms.egg_fields import Kind, VariableField, variable_field
from billing.models import BillingCycle, Plan
from billing.selectors import LocationOffer
from servers.selectors import egg_variable_rules


def cycle_label(label: str, *, amount: Decimal, setup_fee: Decimal, currency: str) -> str:
    if setup_fee > 0:
        return _("%(cycle)s: %(amount)s %(currency)s + %(fee)s %(currency)s setup fee") % {
            "cycle": label,
            "amount": amount,
            "fee": setup_fee,
            "currency": currency,
        }
    return _("%(cycle)s: %(amount)s %(currency)s, no setup fee") % {
        "cycle": label,
        "amount": amount,
        "currency": currency,
    }


class OrderConfigureForm(forms.Form):
    """Cycle, location, add-ons, coupon, server name and the egg's editable variables.

    Bound to a review page's hidden fields ("Change"), it re-renders every choice as it was.
    """

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
        currency: str | None = None,
        addon_names: dict[str, str] | None = None,
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self.plan = plan
        self.addon_names = addon_names or {}  # slug -> name, for the review page
        self.fields["billing_cycle"].label = _("Billing cycle")
        self.fields["location"].label = _("Location")
        self.fields["addons"].label = _("Add-ons")
        self.fields["coupon"].label = _("Coupon code")
        self.fields["server_name"].label = _("Server name")
        self.fields["server_name"].help_text = _("Optional: we pick one when left empty.")
        prices = {price.billing_cycle: price for price in plan.prices.all()}
        if currency:
            in_currency = {p.billing_cycle: p for p in plan.prices.all() if p.currency == currency}
            prices = {cycle: in_currency.get(cycle, price) for cycle, price in prices.items()}
        self.fields["billing_cycle"].choices = [
            (
                value,
                cycle_label(
                    str(label),
                    amount=prices[value].amount,
                    setup_fee=prices[value].setup_fee,
                    currency=prices[value].currency,
                ),
            )
            for value, label in BillingCycle.choices
            if value in prices
        ]
        # A sold-out location stays listed, marked: the order service refuses it with the
        # reason on this field (and checks again at checkout, where the room is taken).
        self.fields["location"].choices = [
            (offer.location.short_code, _("%(location)s (sold out)") % {"location": offer.location})
            if offer.sold_out
            else (offer.location.short_code, str(offer.location))
            for offer in locations
        ]
        available = [offer for offer in locations if offer.available]
        if available:
            self.fields["location"].initial = available[0].location.short_code
        if addon_choices:
            self.fields["addons"].choices = addon_choices
        else:
            del self.fields["addons"]  # no empty "Add-ons" label
        self.variable_fields: dict[str, VariableField] = {}
        for rule in egg_variable_rules(egg_panel_id=plan.egg_id) or []:
            if not (rule.user_editable and rule.user_viewable):
                continue
            name = f"var_{rule.env_variable}"
            spec = variable_field(
                rule, initial=plan.environment.get(rule.env_variable, rule.default_value)
            )
            self.fields[name] = spec.field
            self.variable_fields[name] = spec
        self._not_given = self._take_omitted_variables()

    def _take_omitted_variables(self) -> set[str]:
        """A browser sends every text field; a client that leaves a variable out gets the
        plan's value for it (as if shown pre-filled and sent unchanged). An omitted secret
        stays out: the service then uses the plan's value without it entering the page.
        A variable sent empty stays empty, so a required one is an error."""
        if not self.is_bound:
            return set()
        omitted = {
            name
            for name, spec in self.variable_fields.items()
            if spec.field.widget.value_omitted_from_data(
                self.data, self.files, self.add_prefix(name)
            )
        }
        if not omitted:
            return set()
        data = self.data.copy()
        not_given: set[str] = set()
        for name in omitted:
            spec = self.variable_fields[name]
            if spec.kind == Kind.SECRET:
                spec.field.required = False
                not_given.add(name)
            else:
                data[self.add_prefix(name)] = str(spec.field.initial or "")
        self.data = data
        return not_given

    def variables(self) -> dict[str, str]:
        return {
            name.removeprefix("var_"): self.cleaned_data[name]
            for name in self.variable_fields
            if name not in self._not_given and name in self.cleaned_data
        }

    def hidden_choices(self) -> list[tuple[str, str]]:
        """Every choice as (name, value) pairs, for the review page's hidden inputs (to place
        the order, or to go back and change it). Secrets included: only in this POST form."""
        data = self.cleaned_data
        pairs: list[tuple[str, str]] = [
            ("billing_cycle", data["billing_cycle"]),
            ("location", data["location"]),
        ]
        pairs += [("addons", slug) for slug in data.get("addons", [])]
        pairs += [("coupon", data["coupon"]), ("server_name", data["server_name"])]
        pairs += [
            (name, data[name])
            for name in self.variable_fields
            if name not in self._not_given and name in data
        ]
        return pairs

    def review_rows(self) -> list[tuple[str, str]]:
        """(label, shown value) for the review page: add-ons, coupon and every variable."""
        data = self.cleaned_data
        rows: list[tuple[str, str]] = []
        if "addons" in self.fields:
            chosen = [self.addon_names.get(slug, slug) for slug in data.get("addons", [])]
            rows.append((_("Add-ons"), ", ".join(chosen) or _("None")))
        rows.append((_("Coupon code"), data["coupon"] or _("None")))
        for name, spec in self.variable_fields.items():
            if name in self._not_given:
                value = _("(plan default)")
            else:
                value = spec.display(data.get(name, ""))
            rows.append((str(spec.field.label), value))
        return rows

    def service_arguments(self, customer: User) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "customer": customer,
            "plan_slug": self.plan.slug,
            "billing_cycle": data["billing_cycle"],
            "location_code": data["location"],
            "addon_slugs": data.get("addons", []),
            "coupon_code": data["coupon"],
            "server_name": data["server_name"],
            "variables": self.variables(),
        }
