from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing.services.provisioning_events import OrderProvisioningListener
        from provisioning import listeners

        listeners.register(OrderProvisioningListener())
