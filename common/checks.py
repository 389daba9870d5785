"""Start-up checks of the portal's configuration (`manage.py check`, runserver, migrate)."""

from typing import Any

from django.core.checks import Warning, register


@register()
def environment_names_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Environment names of the earlier systems (the seed documents) found at start-up.

    config/env.py translated them to ours, or not, when it was imported, before any setting was
    read; each one stays a warning until the environment uses our names: common.W101 (ours was
    set from it), common.W102 (ours is set too and wins; it is ignored), common.W103 (it means
    nothing here, or cannot be converted). The messages name variables, never values.
    """
    from config import env as config_env

    return [
        Warning(notice.message, hint=notice.hint, id=notice.check_id)
        for notice in config_env.ENV_ALIAS_NOTICES
    ]
