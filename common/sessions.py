"""Idle and absolute session limits, which Django does not have.

Django's SESSION_COOKIE_AGE restarts whenever the session is saved, so alone it is neither an
idle limit nor an absolute one. This middleware keeps two timestamps in the session: when the
user logged in (never renewed) and when they were last seen (renewed at most once a minute, so
an active user does not cost a session write per request). Past either limit the session is
flushed and the request goes on as anonymous: pages then redirect to the login as usual and the
API answers 401. Limits: config/settings/auth.py.
"""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django_htmx.http import HttpResponseClientRedirect

LOGIN_AT_KEY = "_auth_login_at"
LAST_SEEN_KEY = "_auth_last_seen"
# Seconds of activity the last-seen stamp may lag; it bounds the session writes.
LAST_SEEN_RESOLUTION = 60
# The live fragments' polls (billing/views/live.py): an open tab asking every few seconds is
# not the user being active, so they neither renew the idle stamp nor keep a session alive.
PASSIVE_VIEW_NAMES = frozenset({"dashboard-live", "order-live", "deployment-live"})


def session_idle_timeout(*, user: object) -> int:
    """Seconds without a request after which this user's session ends."""
    if getattr(user, "is_staff", False):
        return settings.SESSION_IDLE_TIMEOUT_STAFF
    return settings.SESSION_IDLE_TIMEOUT_CUSTOMER


class SessionLifetimeMiddleware:
    """Logs out after the idle limit (staff/customer) or the absolute limit since login.

    Goes after AuthenticationMiddleware. A login is recognised by the session key changing
    during the request (django.contrib.auth.login always cycles it), which also covers a
    second login of the same user in the same browser; a session without the stamps (made
    before this middleware, or by the test client's force_login) starts counting now.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        now = time.time()
        is_htmx = request.headers.get("HX-Request") == "true"
        passive = is_htmx and request.method == "GET" and _is_passive_view(request.path_info)
        if request.user.is_authenticated:
            login_at = session.get(LOGIN_AT_KEY)
            last_seen = session.get(LAST_SEEN_KEY)
            if login_at is None or last_seen is None:
                session[LOGIN_AT_KEY] = session[LAST_SEEN_KEY] = now
            elif now - last_seen > session_idle_timeout(user=request.user):
                self._end(request, "You were logged out after a period of inactivity.")
            elif now - login_at > settings.SESSION_ABSOLUTE_TIMEOUT:
                self._end(request, "Your session has ended. Please log in again.")
            elif now - last_seen >= LAST_SEEN_RESOLUTION and not passive:
                session[LAST_SEEN_KEY] = now
        key_before = session.session_key

        response = self.get_response(request)

        if request.user.is_authenticated and session.session_key != key_before:
            session[LOGIN_AT_KEY] = session[LAST_SEEN_KEY] = time.time()
        if is_htmx and response.status_code in (301, 302, 303, 307, 308):
            # A fragment request sent to the login page (session ended): htmx would swap the
            # login page into the fragment; the whole page goes there instead.
            return HttpResponseClientRedirect(response["Location"])
        return response

    @staticmethod
    def _end(request: HttpRequest, message: str) -> None:
        logout(request)
        messages.info(request, message)


def _is_passive_view(path: str) -> bool:
    try:
        return resolve(path).url_name in PASSIVE_VIEW_NAMES
    except Resolver404:
        return False
