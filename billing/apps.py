from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing.services.provisioning_events import OrderProvisioningListener
        from provisioning import listeners

        listeners.register(OrderProvisioningListener())

        from billing.services.dunning import DUNNING_SOURCE, dunning_execute
        from provisioning.fleet.operations import register_operation_executor

        # The drain runs dunning's panel operations through billing's own checks.
        register_operation_executor(DUNNING_SOURCE, dunning_execute)
