"""The site's language: the customer's profile when signed in, the browser otherwise.

Django's LocaleMiddleware picks the language of every request from the language cookie (set by
the switcher) or Accept-Language. ProfileLanguageMiddleware, after AuthenticationMiddleware,
then overrides it with CustomerProfile.preferred_language for a signed-in customer: the profile
is the one place the language is kept, so a change on the profile page, on another device or by
staff applies on the next request, with no cookie to keep in sync (one indexed one-row query per
signed-in page). The switcher (`set_language`, Django's view) sets the cookie and, when signed
in, saves the profile too.

The API (/api/) does not read the profile: its messages follow the client's Accept-Language
(English without one), so an API client decides, whatever the account's web setting.

Service error messages are marked with gettext where they are raised, so they are translated in
the language active for the request (web or API) and stay English in tasks and commands.

Here rather than in common/: it reads the notifications profile, and common imports no app.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from notifications.models import Language
from notifications.selectors import customer_language_get
from notifications.services import customer_language_set

API_PREFIX = "/api/"


def user_language(user: AbstractBaseUser | None, *, default: str | None = None) -> str:
    """The language to speak to `user` in: the profile's, else `default`, else the active one."""
    language = None
    if user is not None and user.pk is not None:
        language = customer_language_get(user=user)  # type: ignore[arg-type]
    if language in dict(settings.LANGUAGES):
        return language  # type: ignore[return-value]
    return default or translation.get_language() or settings.LANGUAGE_CODE


class ProfileLanguageMiddleware:
    """Signed-in customers see the site in their profile's language (see the module docstring).

    After AuthenticationMiddleware (it needs request.user) and LocaleMiddleware (it overrides
    that choice); LocaleMiddleware's response phase then sets Content-Language from it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path_info.startswith(API_PREFIX)
        ):
            language = customer_language_get(user=user)
            if language in dict(settings.LANGUAGES):
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's set_language (cookie + redirect to `next`), and the profile when signed in."""
    response = django_set_language(request)
    language = request.POST.get("language", "")
    if (
        request.user.is_authenticated
        and language in Language.values
        and translation.check_for_language(language)
    ):
        customer_language_set(user=request.user, language=language)  # type: ignore[arg-type]
    return response


class LocalizedPasswordResetForm(PasswordResetForm):
    """Django's reset form; the mail speaks the account's language (else the page's)."""

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        with translation.override(user_language(context.get("user"))):
            super().send_mail(
                subject_template_name,
                email_template_name,
                context,
                from_email,
                to_email,
                html_email_template_name,
            )
