"""Billing: currency, time zone of due dates, invoice numbering, unpaid-order policy, and the
per-package overrides of the catalog."""

import re as _re

from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

from config.env import SEED_ENV_NAMES as _SEED_ENV_NAMES
from config.env import env

# Every amount carries its currency; this is the one the demo catalog and new prices use.
BILLING_DEFAULT_CURRENCY = env("BILLING_DEFAULT_CURRENCY", default="USD")
# Due dates are calendar dates in this zone (e.g. Asia/Jakarta); storage stays UTC.
BILLING_TIME_ZONE = env("BILLING_TIME_ZONE", default="UTC")
BILLING_INVOICE_PREFIX = env("BILLING_INVOICE_PREFIX", default="INV")
# Days a customer has to pay a new order's invoice before the order is cancelled.
BILLING_INVOICE_DUE_DAYS = env.int("BILLING_INVOICE_DUE_DAYS", default=3)
BILLING_UNPAID_ORDER_CANCEL_DAYS = env.int("BILLING_UNPAID_ORDER_CANCEL_DAYS", default=7)
# Shown on invoices for manual bank transfers.
BILLING_BANK_TRANSFER_INSTRUCTIONS = env(
    "BILLING_BANK_TRANSFER_INSTRUCTIONS",
    default="Transfer the total to the account on your invoice, quoting the invoice number.",
)
# The seller printed on invoices (PDF and pages). The address is one line per "|" or newline.
BILLING_COMPANY_NAME = env("BILLING_COMPANY_NAME", default="") or env(
    "PORTAL_NAME", default="GameHost Portal"
)
BILLING_COMPANY_ADDRESS = env("BILLING_COMPANY_ADDRESS", default="")
BILLING_COMPANY_TAX_ID = env("BILLING_COMPANY_TAX_ID", default="")
# The account bank transfers go to, printed on unpaid invoices. Without an account number the
# invoice prints no bank block (only BILLING_BANK_TRANSFER_INSTRUCTIONS on the pages).
BILLING_BANK_NAME = env("BILLING_BANK_NAME", default="")
BILLING_BANK_ACCOUNT_NAME = env("BILLING_BANK_ACCOUNT_NAME", default="")
BILLING_BANK_ACCOUNT_NUMBER = env("BILLING_BANK_ACCOUNT_NUMBER", default="")
BILLING_BANK_SWIFT = env("BILLING_BANK_SWIFT", default="")
BILLING_BANK_IBAN = env("BILLING_BANK_IBAN", default="")
# Days before a server's next due date that its renewal invoice is issued.
BILLING_RENEWAL_INVOICE_DAYS = env.int("BILLING_RENEWAL_INVOICE_DAYS", default=7)
# Days before the due date that an unpaid renewal invoice gets a reminder.
BILLING_REMINDER_DAYS = env.int("BILLING_REMINDER_DAYS", default=3)
# Days after the due date before an unpaid deployment is suspended (seed name).
SUSPENSION_GRACE_DAYS = env.int("SUSPENSION_GRACE_DAYS", default=3)
# Days a suspended deployment is kept before it is terminated.
TERMINATION_GRACE_DAYS = env.int("TERMINATION_GRACE_DAYS", default=14)
# --- A live server's lifecycle (issue 12) ------------------------------------------------------
# A downgrade is applied at once, crediting the unused difference of the paid period (False),
# or on the server's next due date (True): then nothing is credited (the bigger plan is kept for
# every paid day) and the next renewal is billed at the smaller plan.
BILLING_DOWNGRADE_AT_PERIOD_END = env.bool("BILLING_DOWNGRADE_AT_PERIOD_END", default=False)
# An immediate cancellation gives the unused paid days back as account credit ("credit") or
# nothing ("none"); a cancellation at the end of the term has no unused days.
BILLING_CANCEL_IMMEDIATE_REFUND = env("BILLING_CANCEL_IMMEDIATE_REFUND", default="credit")
# Renewal invoices are charged to the customer's default saved card this many days before due
# (off-session); a declined charge is retried after each of these days, then left to the
# customer (who is told each time).
BILLING_AUTOCHARGE_DAYS_BEFORE_DUE = env.int("BILLING_AUTOCHARGE_DAYS_BEFORE_DUE", default=3)
BILLING_AUTOCHARGE_RETRY_DAYS = [
    int(days) for days in env.list("BILLING_AUTOCHARGE_RETRY_DAYS", default=["1", "2", "3"])
]
# Termination: take a final backup through the panel before deleting (needs
# PTERODACTYL_CLIENT_API_KEY, an admin's client API key) and keep the server suspended on
# the panel, restorable by staff, for this many days before it is deleted (0: delete at once).
TERMINATION_FINAL_BACKUP = env.bool("TERMINATION_FINAL_BACKUP", default=False)
TERMINATION_RESTORE_WINDOW_DAYS = env.int("TERMINATION_RESTORE_WINDOW_DAYS", default=0)
# Minutes a checkout keeps room on a node for its unpaid order (servers.CapacityHold): the
# last free slot is sold once, later checkouts see the location sold out. Paying within this
# time keeps the room until the server exists; a later payment takes room again if there is
# some, else provisioning waits for capacity.
CAPACITY_HOLD_MINUTES = env.int("CAPACITY_HOLD_MINUTES", default=60)


# --- Per-package overrides --------------------------------------------------------------------
# <PACKAGE>_EGG_ID, <PACKAGE>_NEST_ID, <PACKAGE>_DOCKER_IMAGE, <PACKAGE>_STARTUP (PACKAGE: a
# plan's slug in upper case, "-" as "_": BRONZE_EGG_ID=7), the provisioning guide's names, for
# any plan, so they are found by scanning the environment: {"BRONZE": {"egg_id": 7, ...}}.
# seed_catalog writes them into the plan rows and provisioning prefers them to the row
# (billing.catalog.package_overrides). An empty image or startup counts as unset.
def _package_overrides() -> dict[str, dict[str, int | str]]:
    fields = {
        "NEST_ID": ("nest_id", env.int),
        "EGG_ID": ("egg_id", env.int),
        "DOCKER_IMAGE": ("docker_image", env.str),
        "STARTUP": ("startup", env.str),
    }
    pattern = _re.compile(r"(?P<package>[A-Z0-9_]+?)_(?P<field>" + "|".join(fields) + r")")
    overrides: dict[str, dict[str, int | str]] = {}
    for name in sorted(env.ENVIRON):
        match = pattern.fullmatch(name)
        if not match or name in _SEED_ENV_NAMES:
            continue
        key, read = fields[match["field"]]
        try:
            value = read(name)
        except ValueError as exc:
            raise _ImproperlyConfigured(f"{name} must be a whole number (a panel id).") from exc
        if value is not None and value != "":
            overrides.setdefault(match["package"], {})[key] = value
    return overrides


PACKAGE_OVERRIDES = _package_overrides()
