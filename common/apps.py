from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Portal operations"

    def ready(self) -> None:
        from common import checks  # noqa: F401  (registers the start-up checks)
