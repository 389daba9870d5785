from django.apps import AppConfig


class PanelSimulatorConfig(AppConfig):
    """Installed only for its `run_panel_simulator` command: the simulator has no models and
    the portal never imports it (an import-linter contract holds that)."""

    name = "panel_simulator"
    verbose_name = "Panel simulator (demo and test double)"
