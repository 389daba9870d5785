"""The answers to the WhatsApp commands that need servers: "status" and "login".

notifications parses and stores the message, checks the number and the rate limit, and calls
these (registered in ProvisioningConfig.ready: notifications cannot import provisioning or
servers). They run inside the transaction that marks the message answered and make no outside
call; the reply is queued as a message and sent by the notifications worker.
"""

from django.db.models import Q

from common.errors import ConflictError
from notifications.commands import CommandReply, CommandRequest, command_handler_register
from notifications.models import Channel, InboundCommand
from provisioning.errors import ProvisioningErrorCode
from provisioning.operations import credentials_resend
from servers.models import Deployment, DeploymentStatus

# A WhatsApp text holds 4096 characters: the newest servers, enough for any real customer.
STATUS_MAX_SERVERS = 20
_GONE = (DeploymentStatus.TERMINATED, DeploymentStatus.CANCELLED)
_HAS_LOGIN = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)


def whatsapp_status_answer(request: CommandRequest) -> CommandReply:
    """The customer's servers (not terminated or cancelled): name, status, next due date."""
    deployments = (
        Deployment.objects.filter(customer=request.user)
        .filter(~Q(status__in=_GONE))
        .order_by("-created_at", "-pk")
        .values("name", "status", "next_due_date")[:STATUS_MAX_SERVERS]
    )
    servers = [
        {
            "name": row["name"],
            "status": row["status"],
            "next_due_date": row["next_due_date"].isoformat() if row["next_due_date"] else "",
        }
        for row in deployments
    ]
    return CommandReply(reply="status", context={"servers": servers})


def whatsapp_login_answer(request: CommandRequest) -> CommandReply:
    """A new one-time credentials link, by WhatsApp, through the dashboard's own flow
    (`credentials_resend`: same rate limit, same audit row). The panel login is one per
    customer, shared by their servers: the message names the newest live one."""
    deployment_id = (
        Deployment.objects.filter(customer=request.user, status__in=_HAS_LOGIN)
        .order_by("-created_at", "-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if deployment_id is None:
        return CommandReply(reply="login_unavailable")
    try:
        deliveries = credentials_resend(
            deployment_id=deployment_id,
            user=request.user,
            channels=[Channel.WHATSAPP],
            occurrence=f"whatsapp-{request.inbound_id}",
            via="asked on WhatsApp",
        )
    except ConflictError as exc:
        if exc.code == ProvisioningErrorCode.RATE_LIMITED:
            return CommandReply(reply="login_rate_limited")
        return CommandReply(reply="login_unavailable")
    if not deliveries:
        raise RuntimeError("credentials_resend queued no message")
    on_whatsapp = [d for d in deliveries if d.channel == Channel.WHATSAPP]
    return CommandReply(sent=(on_whatsapp or deliveries)[0])


def register() -> None:
    command_handler_register(InboundCommand.STATUS, whatsapp_status_answer)
    command_handler_register(InboundCommand.LOGIN, whatsapp_login_answer)
