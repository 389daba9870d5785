from django.core.management.base import BaseCommand

from notifications.services import staff_alert_recipients
from provisioning.models import ProvisioningRun, RunStatus
from provisioning.selectors import provisioning_status


class Command(BaseCommand):
    help = "Provisioning at a glance: queue depth, running, failed, success rate (24 h)."

    def handle(self, *args, **options) -> None:
        status = provisioning_status()
        rate = status.success_rate_24h
        out = self.stdout.write
        out(f"queued (waiting for a slot):      {status.queued}")
        out(f"running:                          {status.running}")
        out(f"rolling back:                     {status.compensating}")
        out(f"needs attention (rollback failed): {status.needs_attention}")
        out(f"waiting for staff (failed/manual): {status.waiting_manual}")
        out(
            f"last 24 h: {status.succeeded_24h} succeeded, {status.failed_24h} failed, "
            f"success rate {'-' if rate is None else f'{rate:.0%}'}"
        )
        how, who = staff_alert_recipients()
        out(
            {
                "configured": f"staff alerts go to:               {', '.join(who)}",
                "superusers": "staff alerts go to:               the superusers "
                f"{', '.join(who)} (ADMIN_EMAILS and ADMIN_PHONE are unset)",
                "nobody": "staff alerts go to:               NOBODY: set ADMIN_EMAILS or give a "
                "superuser an e-mail address",
            }[how]
        )
        problems = (
            ProvisioningRun.objects.filter(status__in=[RunStatus.FAILED, RunStatus.NEEDS_ATTENTION])
            .select_related("request")
            .order_by("-finished_at")[:10]
        )
        if problems:
            out("recent failures:")
            for run in problems:
                out(
                    f"  run #{run.pk} {run.request.order_reference} {run.status} at "
                    f"{run.failed_step or '-'}: {run.last_error[:160]}"
                )
