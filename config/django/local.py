"""Local development and the `make run` demo: SQLite, filesystem broker, console mail."""

from config.django.base import *  # noqa: F403
from config.env import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "local-dev-insecure-secret-key-change-me-0123456789abcdef"  # noqa: F405
if not SALT_KEY:  # noqa: F405
    SALT_KEY = ["local-dev-insecure-field-encryption-key"]
    FIELD_ENCRYPTION_KEYS = SALT_KEY

# The demo points at our panel simulator (`manage.py run_panel_simulator`) unless told
# otherwise. The keys are the simulator's fixed demo keys (panel_simulator.DEMO_API_KEY
# and DEMO_CLIENT_API_KEY; a test keeps them equal), not secrets.
if not PTERODACTYL_URL:  # noqa: F405
    PTERODACTYL_URL = "http://127.0.0.1:8081"
    PTERODACTYL_ADMIN_API_KEY = PTERODACTYL_ADMIN_API_KEY or (  # noqa: F405
        "ptla_SIMDEMOadm1" + "0123456789abcdefghijklmnopqrstuv"
    )
    PTERODACTYL_CLIENT_API_KEY = PTERODACTYL_CLIENT_API_KEY or (  # noqa: F405
        "ptlc_SIMDEMOadm1" + "abcdefghijklmnopqrstuv0123456789"
    )

# The panel simulator (a demo and test double, not part of the product) for its
# `run_panel_simulator` command; production settings do not install it.
INSTALLED_APPS = [*INSTALLED_APPS, "panel_simulator.apps.PanelSimulatorConfig"]  # noqa: F405
