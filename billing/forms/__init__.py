"""Web forms. They only shape input; the services validate business rules."""

from billing.forms.accounts import ProfileForm, SignupForm
from billing.forms.common import add_service_errors
from billing.forms.orders import OrderConfigureForm
from billing.forms.tokens import ApiTokenCreateForm

__all__ = [
    "ApiTokenCreateForm",
    "OrderConfigureForm",
    "ProfileForm",
    "SignupForm",
    "add_service_errors",
]
