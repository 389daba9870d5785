"""Start-up checks (`manage.py check`, runserver, migrate): where staff alerts will go."""

from typing import Any

from django.conf import settings
from django.core.checks import Warning, register


@register()
def staff_alert_recipients_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Settings only (no database at start-up): unset recipients are said out loud."""
    has_admins = any(address for _name, address in settings.ADMINS)
    has_phone = bool(settings.WHATSAPP_ENABLED and settings.ADMIN_PHONE)
    if has_admins or has_phone:
        return []
    return [
        Warning(
            "ADMIN_EMAILS and ADMIN_PHONE are unset: staff alerts (failed provisioning, fleet "
            "incidents, payments to review) go to the active superusers' e-mail addresses.",
            hint="Set ADMIN_EMAILS (comma list) and/or ADMIN_PHONE to choose who is alerted.",
            id="notifications.W001",
        )
    ]
