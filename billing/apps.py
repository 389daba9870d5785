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

        from billing.services.cancellations import CANCELLATION_SOURCE, cancellation_execute

        # A cancellation's termination: checked again (still scheduled, due) at its turn.
        register_operation_executor(CANCELLATION_SOURCE, cancellation_execute)

        from billing.services.plan_change_execution import plan_change_execute
        from billing.services.plan_changes import PLAN_CHANGE_SOURCE

        # A paid upgrade's or a downgrade's new build: checked again (still open, paid, due).
        register_operation_executor(PLAN_CHANGE_SOURCE, plan_change_execute)
