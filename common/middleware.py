"""HTTP security middleware: the Content-Security-Policy and `no-store` on private responses.

Both read their configuration from config/settings/security.py.
"""

from collections.abc import Callable

from csp.constants import UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import add_never_cache_headers


def _view_name(request: HttpRequest) -> str | None:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else None


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware (policy: settings.CONTENT_SECURITY_POLICY) plus one exception.

    The admin's notification preview shows an e-mail's HTML in a sandboxed `srcdoc` iframe. Such
    a frame inherits this page's policy, and e-mail HTML must use `style="..."` attributes (mail
    clients drop stylesheets), so those views, listed in SECURITY_INLINE_STYLE_ATTR_VIEWS, may
    use inline style *attributes*. Scripts stay as strict as everywhere else, and the frame is
    sandboxed (no script runs in it at all).
    """

    def get_policy_parts(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        report_only: bool = False,
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if _view_name(request) in settings.SECURITY_INLINE_STYLE_ATTR_VIEWS:
            parts.update = {**(parts.update or {}), "style-src-attr": [UNSAFE_INLINE]}
        return parts


class PrivateNoStoreMiddleware:
    """`Cache-Control: no-store` (Django's never_cache headers) on every private response.

    Private means: the user is authenticated (any page may show their name, orders or
    credentials, and a shared or back-button cache must not keep it), or the view is not
    listed in SECURITY_PUBLIC_CACHEABLE_VIEWS. Deny by default, so a new page is private
    until someone decides it is public. Static files never reach this (the web server or
    staticfiles serve them).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self._is_private(request):
            add_never_cache_headers(response)
        return response

    @staticmethod
    def _is_private(request: HttpRequest) -> bool:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return True
        return _view_name(request) not in settings.SECURITY_PUBLIC_CACHEABLE_VIEWS
