from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"

    def ready(self) -> None:
        # Loads the tasks module, which gives the saga engine its dispatcher.
        from provisioning import (
            tasks,  # noqa: F401
            termination,
        )

        # The drain runs the purge of terminated servers kept on the panel through this.
        termination.register()

        from provisioning import whatsapp_commands

        # WhatsApp "status" and "login" need servers: notifications calls these by name.
        whatsapp_commands.register()
