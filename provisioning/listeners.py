"""Who hears about provisioning outcomes, without provisioning importing them.

Billing (which calls provisioning) registers a listener at startup (BillingConfig.ready) to move
its orders along. Listeners are plain objects called inside the saga's own transaction, so an
order's status commits atomically with the run's. This is explicit dependency inversion, not a
signal: the calls are named, typed, and made from one place (provisioning.saga.engine).
"""

from typing import Protocol

from common.actors import Actor


class ProvisioningListener(Protocol):
    def provisioning_started(self, *, deployment_id: int, actor: Actor) -> None: ...

    def provisioning_succeeded(self, *, deployment_id: int, actor: Actor) -> None: ...

    def provisioning_failed(self, *, deployment_id: int, error: str, actor: Actor) -> None: ...

    def server_terminated(self, *, deployment_id: int, actor: Actor) -> None: ...


_listeners: list[ProvisioningListener] = []


def register(listener: ProvisioningListener) -> None:
    if not any(type(existing) is type(listener) for existing in _listeners):
        _listeners.append(listener)


def notify_started(*, deployment_id: int, actor: Actor) -> None:
    for listener in _listeners:
        listener.provisioning_started(deployment_id=deployment_id, actor=actor)


def notify_succeeded(*, deployment_id: int, actor: Actor) -> None:
    for listener in _listeners:
        listener.provisioning_succeeded(deployment_id=deployment_id, actor=actor)


def notify_terminated(*, deployment_id: int, actor: Actor) -> None:
    for listener in _listeners:
        listener.server_terminated(deployment_id=deployment_id, actor=actor)


def notify_restored(*, deployment_id: int, actor: Actor) -> None:
    """Staff restored a terminated server within the restore window (TERMINATED -> ACTIVE).
    Optional on a listener (``server_restored``): one without it is skipped."""
    for listener in _listeners:
        hook = getattr(listener, "server_restored", None)
        if hook is not None:
            hook(deployment_id=deployment_id, actor=actor)


def notify_failed(*, deployment_id: int, error: str, actor: Actor) -> None:
    for listener in _listeners:
        listener.provisioning_failed(deployment_id=deployment_id, error=error, actor=actor)
