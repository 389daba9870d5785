from django.core.management.base import BaseCommand, CommandError

from billing.catalog import plan_panel_spec
from billing.models import Plan
from notifications.services import staff_alert_recipients
from provisioning.panel_check import (
    FAIL,
    OK,
    WARN,
    CheckResult,
    PlanRequirement,
    format_report,
    panel_check,
)


class Command(BaseCommand):
    help = (
        "Check the panel connection and configuration: URL, key and admin permission, "
        "DEFAULT_NODE_ID, every active plan's egg and image, free allocations per node. "
        "Exit status 0 only when nothing failed."
    )

    def handle(self, *args, **options) -> None:
        plans = []
        for plan in Plan.objects.filter(is_active=True):
            spec = plan_panel_spec(plan)
            plans.append(
                PlanRequirement(
                    name=plan.name,
                    nest_id=spec["nest_id"],
                    egg_id=spec["egg_id"],
                    docker_image=spec["docker_image"],
                )
            )
        results = [*panel_check(plans=plans), _staff_alerts()]
        self.stdout.write(format_report(results))
        if any(result.status == FAIL for result in results):
            raise CommandError("the panel check failed; see the fixes above")


def _staff_alerts() -> CheckResult:
    how, who = staff_alert_recipients()
    if how == "configured":
        return CheckResult(OK, "Staff alerts go to ADMIN_EMAILS / ADMIN_PHONE", ", ".join(who))
    if how == "superusers":
        return CheckResult(
            WARN,
            "Staff alerts go to the superusers (ADMIN_EMAILS and ADMIN_PHONE are unset)",
            ", ".join(who),
            fix="Set ADMIN_EMAILS and/or ADMIN_PHONE to choose who is alerted.",
        )
    return CheckResult(
        WARN,
        "Staff alerts reach nobody",
        "ADMIN_EMAILS and ADMIN_PHONE are unset and no active superuser has an e-mail address.",
        fix="Set ADMIN_EMAILS, or give a superuser an e-mail address.",
    )
