"""The panel user step: find or create the customer's panel user (by our external id, then by
exact e-mail), and on rollback delete only what we created and nothing else uses."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.actors import Actor
from provisioning.credentials import panel_password, panel_username
from provisioning.models import PanelAccount, ProvisioningRun
from provisioning.pterodactyl import (
    PanelBadRequest,
    PanelUnavailable,
    PanelValidationError,
)
from provisioning.saga.step_base import (
    Step,
    StepContext,
    StepFailed,
    StepName,
    StepOutcome,
    mark_sent,
)
from servers.models import Deployment, DeploymentStatus

logger = logging.getLogger(__name__)


class PanelUserStep(Step):
    name, label = StepName.PANEL_USER, "Panel user"

    def execute(self, ctx: StepContext) -> StepOutcome:
        customer = ctx.deployment.customer
        account = _panel_account_prepare(customer)
        summary: dict[str, Any] = {"external_id": account.external_id}
        if account.panel_user_id:
            # A returning customer costs no request: if the panel lost that user, the server
            # create says so (422 on `user`) and the run comes back here without the stored id.
            summary["found"] = "stored id"
            return StepOutcome(
                updates={"panel_user_id": account.panel_user_id, "panel_user_created": False},
                summary=summary,
            )
        client = ctx.client
        user = None
        created = False
        if ctx.run.user_create_sent_at is not None:
            # An earlier try sent the create and never learnt its outcome: look before sending.
            user = client.find_user_by_external_id(account.external_id)
            if user is not None:
                created, summary["found"] = True, "external_id (an earlier try created it)"
        if user is None:
            user, created, summary["found"] = self._create(ctx, account, customer)
        summary["panel_user_id"] = user.id
        return StepOutcome(
            updates={"panel_user_id": user.id, "panel_user_created": created}, summary=summary
        )

    def _create(self, ctx: StepContext, account: PanelAccount, customer: Any) -> tuple:
        """POST /users; a 422 names what already exists, and only then is it looked up."""
        client = ctx.client
        mark_sent(ctx, "user_create_sent_at")
        try:
            result = client.create_user(
                email=account.email,
                username=account.username,
                first_name=(customer.first_name or "Customer")[:191],
                last_name=(customer.last_name or f"#{customer.pk}")[:191],
                external_id=account.external_id,
                password=account.password,
            )
        except PanelValidationError as exc:
            if exc.has("external_id", "unique"):
                user = client.find_user_by_external_id(account.external_id)
                if user is not None:
                    # Our external id: made by an earlier try of ours whose reply was lost.
                    return user, True, "external_id (created earlier)"
                raise PanelUnavailable("the panel reports our external id taken; retrying") from exc
            if exc.has("email", "unique"):
                user = client.find_user_by_email(account.email)
                if user is None:
                    raise PanelUnavailable(
                        "the panel reports the e-mail taken but lists no such user; retrying"
                    ) from exc
                if user.root_admin:
                    # Sign-up does not prove e-mail ownership: never hand a panel administrator's
                    # account to a customer.
                    raise StepFailed(
                        f"The panel user with e-mail {account.email} is a panel administrator; "
                        "it is not attached to a customer. Give the customer another e-mail or "
                        "link a user by hand (external id " + account.external_id + ")."
                    ) from exc
                return user, False, "exact email (adopted existing panel user)"
            if exc.has("username", "unique"):
                # Rare clash of the generated name: pick another, try again later.
                PanelAccount.objects.filter(pk=account.pk).update(
                    username=panel_username(seed=f"{account.email}{timezone.now()}")
                )
                raise PanelUnavailable("generated panel username was taken; retrying") from exc
            raise
        return result.resource, True, f"created ({result.origin})"

    def finalize(self, run: ProvisioningRun, outcome: StepOutcome, actor: Actor) -> None:
        account = PanelAccount.objects.select_for_update().get(user_id=run.deployment.customer_id)
        if account.panel_user_id != run.panel_user_id:
            account.panel_user_id = run.panel_user_id
            if not run.panel_user_created:
                # Adopted a user we did not create: we do not know its password.
                account.password = None
                account.created_by_portal = False
            else:
                account.created_by_portal = True
            account.save()

    def compensate(self, ctx: StepContext) -> StepOutcome:
        run = ctx.run
        if not run.panel_user_id:
            return self._compensate_unrecorded(ctx)
        if not run.panel_user_created:
            return StepOutcome(summary={"kept_panel_user": run.panel_user_id})
        if panel_user_in_use(ctx.deployment, exclude_run_id=run.pk):
            # Another order of this customer is being provisioned (or live) with this user.
            return StepOutcome(summary={"kept_panel_user": run.panel_user_id, "in_use": True})
        try:
            ctx.client.delete_user(run.panel_user_id, missing_ok=True)
        except PanelBadRequest:
            # The panel refuses while the user owns servers (e.g. another deployment): keep it.
            return StepOutcome(summary={"kept_panel_user": run.panel_user_id, "owns_servers": True})
        PanelAccount.objects.filter(panel_user_id=run.panel_user_id).update(panel_user_id=None)
        return StepOutcome(
            updates={"panel_user_created": False},
            summary={"deleted_panel_user": run.panel_user_id},
        )

    def _compensate_unrecorded(self, ctx: StepContext) -> StepOutcome:
        """No user recorded, yet a create may have reached the panel (its reply lost, and the
        lookup after it failed too): find it by our external id, as the server step does. A
        customer whose account already points at a panel user keeps it: that one is not this
        run's."""
        account = PanelAccount.objects.filter(user_id=ctx.deployment.customer_id).first()
        if account is None or account.panel_user_id:
            return StepOutcome(summary={"kept_panel_user": account and account.panel_user_id})
        if ctx.run.user_create_sent_at is None:
            return StepOutcome(summary={"panel_user": "no create was sent"})
        user = ctx.client.find_user_by_external_id(account.external_id)
        if user is None:
            return StepOutcome(summary={"panel_user": "none created"})
        if panel_user_in_use(ctx.deployment, exclude_run_id=ctx.run.pk):
            return StepOutcome(summary={"kept_panel_user": user.id, "in_use": True})
        try:
            ctx.client.delete_user(user.id, missing_ok=True)
        except PanelBadRequest:
            return StepOutcome(summary={"kept_panel_user": user.id, "owns_servers": True})
        return StepOutcome(
            summary={"deleted_panel_user": user.id, "found_by": "external_id (reply was lost)"}
        )


def panel_user_in_use(deployment: Deployment, *, exclude_run_id: int | None = None) -> bool:
    """Whether another deployment of the same customer holds or may soon hold a panel server
    (the panel only refuses to delete a user once a server exists, not while one is coming)."""
    from provisioning.models import ACTIVE_RUN_STATUSES

    others = Deployment.objects.filter(customer_id=deployment.customer_id).exclude(pk=deployment.pk)
    live = others.filter(
        status__in=[
            DeploymentStatus.PROVISIONING,
            DeploymentStatus.ACTIVE,
            DeploymentStatus.SUSPENDED,
        ]
    ).exists()
    running = (
        ProvisioningRun.objects.filter(
            deployment__customer_id=deployment.customer_id, status__in=ACTIVE_RUN_STATUSES
        )
        .exclude(pk=exclude_run_id)
        .exists()
    )
    return live or running


def _panel_account_prepare(customer: Any) -> PanelAccount:
    """The customer's account row, with username and password chosen before any panel call,
    so a crash after the panel created the user still knows the password it was given."""
    account = PanelAccount.objects.filter(user=customer).first()
    if account is not None:
        return account
    seed = customer.email or str(customer.pk)
    username = panel_username(seed=seed)
    email = customer.email or f"{username}@{settings.PTERODACTYL_EMAIL_DOMAIN}"
    try:
        with transaction.atomic():
            return PanelAccount.objects.create(
                user=customer,
                external_id=f"portal-user-{customer.pk}",
                username=username,
                email=email,
                password=panel_password(),
                created_by_portal=True,
            )
    except IntegrityError:
        return PanelAccount.objects.get(user=customer)
