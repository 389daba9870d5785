"""The API token form of the dashboard (shapes input; common.tokens validates the rules)."""

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.forms.common import add_service_errors
from common.errors import ApplicationError
from common.models import STAFF_ONLY_SCOPES, ApiTokenScope

ACCESS_READ = "read"
ACCESS_WRITE = "write"
NEVER = "never"
# api_token_create's argument names -> this form's fields, for its field errors.
SERVICE_FIELDS = {"scopes": "staff_scopes", "expires_at": "expires_in"}

EXPIRY_CHOICES = [
    ("30", _("In 30 days")),
    ("90", _("In 90 days")),
    ("365", _("In a year")),
    (NEVER, _("Never")),
]

STAFF_SCOPE_CHOICES = [
    (ApiTokenScope.PROVISIONING.value, _("Provisioning: queue, retry and dismiss provisioning")),
    (ApiTokenScope.BILLING.value, _("Billing: confirm payments, change plans")),
]


def expires_at_for(choice: str, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """The expiry time of an expiry choice ("30", "90", "365" days or "never")."""
    if choice == NEVER:
        return None
    return (now or timezone.now()) + dt.timedelta(days=int(choice))


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What uses the token, e.g. “backup script”."),
    )
    access = forms.ChoiceField(
        label=_("Access"),
        choices=[
            (ACCESS_READ, _("Read only")),
            (ACCESS_WRITE, _("Read and write (orders, payments, power actions)")),
        ],
        initial=ACCESS_READ,
        widget=forms.RadioSelect,
    )
    staff_scopes = forms.MultipleChoiceField(
        label=_("Staff scopes"),
        choices=STAFF_SCOPE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    expires_in = forms.ChoiceField(
        label=_("Expires"), choices=EXPIRY_CHOICES, initial="90", widget=forms.RadioSelect
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not user.is_staff:
            # Not offered to customers; kept (hidden) so that a posted staff scope reaches the
            # service, which refuses it with a field error instead of it being dropped silently.
            self.fields["staff_scopes"].widget = forms.MultipleHiddenInput()

    def service_arguments(self) -> dict[str, Any]:
        """The keyword arguments of common.tokens.api_token_create this form's data gives."""
        data = self.cleaned_data
        scopes = [ApiTokenScope.READ.value]
        if data["access"] == ACCESS_WRITE:
            scopes.append(ApiTokenScope.WRITE.value)
        scopes += [s for s in data["staff_scopes"] if s in STAFF_ONLY_SCOPES]
        return {
            "name": data["name"],
            "scopes": scopes,
            "expires_at": expires_at_for(data["expires_in"]),
        }

    def add_service_errors(self, error: ApplicationError) -> None:
        """The service's field errors on this form's fields (its names differ from ours)."""
        renamed = {SERVICE_FIELDS.get(k, k): v for k, v in error.field_errors.items()}
        add_service_errors(self, ApplicationError.for_fields(renamed) if renamed else error)
