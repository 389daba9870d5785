"""Log-in protection: lockout after failed passwords, the staff second factor, session lifetimes.

Brute force (django-axes, common.lockout). Every password check of the portal goes through
django.contrib.auth.authenticate() with the request (portal login, admin login; the API has no
password login), and axes.backends.AxesStandaloneBackend, first in AUTHENTICATION_BACKENDS,
refuses it while the client is locked out, before any password hash is computed. Two limits:
  - LOGIN_FAILURE_LIMIT failures for one account from one IP address lock that pair, so a
    guesser is stopped without letting anyone lock a customer out from elsewhere;
  - LOGIN_IP_FAILURE_LIMIT failures from one IP address, whatever the accounts, lock the
    address (higher, because customers share addresses behind carrier-grade NAT).
A lockout lasts LOGIN_LOCKOUT_MINUTES from the last failure before it; attempts while locked
out are not counted (the cool-off does not restart) and a success does not erase the count (a
success on one's own account would otherwise reset the per-address count of a guesser). Staff
unlock someone early by deleting the row in Admin -> Axes -> Access attempts.

Staff second factor (django-otp, common.admin_site, common.two_factor): the admin needs a
session verified with a TOTP code or a single-use recovery code. OTP_ADMIN_REQUIRED=false turns
that off (an emergency switch, e.g. when every staff device is lost; leave it on otherwise).

Sessions (common.sessions.SessionLifetimeMiddleware): logged out after SESSION_IDLE_MINUTES_*
without a request and SESSION_ABSOLUTE_HOURS after the login, however active. Customers get a
longer idle time than staff: paying goes through Stripe Checkout and back, and reading a
server's page or the panel alongside the portal leaves the portal idle for a while; staff
sessions act on every customer, so they get ASVS's 30 minutes.
"""

from datetime import timedelta

from config.env import env

# --- Brute force (django-axes) ---------------------------------------------------------------
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
# Our handler's own limit for the "ip_address" parameter (axes itself has one limit for all).
AXES_IP_FAILURE_LIMIT = env.int("LOGIN_IP_FAILURE_LIMIT", default=50)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "common.lockout.PortalAxesHandler"
AXES_LOCKOUT_CALLABLE = "common.lockout.lockout_response"
AXES_USERNAME_CALLABLE = "common.lockout.client_username"
AXES_CLIENT_IP_CALLABLE = "common.lockout.client_ip_address"
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# How many reverse proxies in front of the portal append to X-Forwarded-For (0: none, the
# client is REMOTE_ADDR). Behind one proxy that is set to 1; a larger value than the real
# count lets clients choose their address, and with it their lockout counter.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# --- Staff second factor (django-otp) ---------------------------------------------------------
OTP_ADMIN_REQUIRED = env.bool("OTP_ADMIN_REQUIRED", default=True)
# The name authenticator apps show next to the account.
OTP_TOTP_ISSUER = env("PORTAL_NAME", default="GameHost Portal")
# The device admin never shows a TOTP secret or its QR code (staff could copy a colleague's).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- Sessions ---------------------------------------------------------------------------------
SESSION_ABSOLUTE_TIMEOUT = env.int("SESSION_ABSOLUTE_HOURS", default=12) * 3600
# The cookie and the stored session end with the absolute limit at the latest.
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT
SESSION_IDLE_TIMEOUT_STAFF = env.int("SESSION_IDLE_MINUTES_STAFF", default=30) * 60
SESSION_IDLE_TIMEOUT_CUSTOMER = env.int("SESSION_IDLE_MINUTES_CUSTOMER", default=60) * 60
# Password-reset and sign-up confirmation links.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_MINUTES", default=60) * 60

# --- Accounts (billing.services.accounts) -----------------------------------------------------
# An account whose e-mail address is not verified cannot place an order (web and API).
ORDER_REQUIRES_VERIFIED_EMAIL = env.bool("ORDER_REQUIRES_VERIFIED_EMAIL", default=True)
# Links that verify an address or change the e-mail of an account.
ACCOUNT_EMAIL_LINK_TIMEOUT = env.int("ACCOUNT_EMAIL_LINK_HOURS", default=24) * 3600
# Verification and e-mail change links an account may ask for per hour (one a minute at most).
ACCOUNT_MAILS_PER_HOUR = env.int("ACCOUNT_MAILS_PER_HOUR", default=5)
