"""Loading the default catalog: the guide's Bronze..Diamond and the Discord-bot tiers."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from billing.catalog import package_overrides
from billing.models import Addon, AddonPrice, BillingCycle, Plan, PlanCategory, PlanPrice
from servers.demo import DISCORD_EGG_ID, DISCORD_NEST_ID, PAPER_EGG_ID, PAPER_NEST_ID
from servers.models import Location

GB = 1024
JAVA_STARTUP = "java -Xms128M -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}"

# name, memory GB, cpu %, disk GB, databases/allocations/backups, monthly price
GAME_PLANS = [
    ("bronze", "Bronze", 1, 100, 5, 1, Decimal("4.00")),
    ("silver", "Silver", 2, 200, 10, 2, Decimal("8.00")),
    ("gold", "Gold", 4, 400, 20, 3, Decimal("15.00")),
    ("platinum", "Platinum", 8, 800, 40, 5, Decimal("28.00")),
    ("diamond", "Diamond", 16, 1600, 80, 10, Decimal("52.00")),
]
# name, memory MB, cpu %, disk GB, databases, backups, max guilds, monthly price
BOT_PLANS = [
    ("starter", "Starter", 512, 50, 1, 0, 1, 1, Decimal("2.00")),
    ("pro", "Pro", 1024, 100, 2, 1, 3, 3, Decimal("4.00")),
    ("business", "Business", 2048, 200, 5, 3, 7, 10, Decimal("8.00")),
]
# Longer cycles: months and the discount on the monthly price.
CYCLE_DISCOUNTS = {
    BillingCycle.MONTHLY: Decimal("0"),
    BillingCycle.QUARTERLY: Decimal("0.05"),
    BillingCycle.SEMIANNUAL: Decimal("0.10"),
    BillingCycle.ANNUAL: Decimal("0.15"),
}
GAME_SETUP_FEE = Decimal("1.50")  # monthly only; waived on longer cycles


@dataclass
class CatalogSeedReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"created {len(self.created)} ({', '.join(self.created) or '-'}); "
            f"updated {len(self.updated)} ({', '.join(self.updated) or '-'})"
        )


def cycle_price(monthly: Decimal, cycle: BillingCycle) -> Decimal:
    months = BillingCycle(cycle).months
    return (monthly * months * (1 - CYCLE_DISCOUNTS[cycle])).quantize(Decimal("0.01"))


def _plan_defaults() -> list[dict[str, Any]]:
    plans = []
    for order, (slug, name, mem_gb, cpu, disk_gb, count, price) in enumerate(GAME_PLANS):
        plans.append(
            {
                "slug": slug,
                "monthly": price,
                "setup_fee": GAME_SETUP_FEE,
                "fields": {
                    "name": name,
                    "description": f"Minecraft (Paper) server with {mem_gb} GB RAM.",
                    "category": PlanCategory.GAME_SERVER,
                    "memory_mb": mem_gb * GB,
                    "swap_mb": 0,
                    "disk_mb": disk_gb * GB,
                    "io_weight": 500,
                    "cpu_percent": cpu,
                    "oom_disabled": True,
                    "databases": count,
                    "allocations": count,
                    "backups": count,
                    "nest_id": PAPER_NEST_ID,
                    "egg_id": PAPER_EGG_ID,
                    "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
                    "startup": JAVA_STARTUP,
                    "environment": {},
                    "display_order": order,
                },
            }
        )
    for order, (slug, name, mem, cpu, disk_gb, dbs, backups, guilds, price) in enumerate(
        BOT_PLANS, start=100
    ):
        plans.append(
            {
                "slug": slug,
                "monthly": price,
                "setup_fee": Decimal("0"),
                "fields": {
                    "name": name,
                    "description": f"Discord bot hosting, up to {guilds} guild(s).",
                    "category": PlanCategory.DISCORD_BOT,
                    "memory_mb": mem,
                    "swap_mb": 0,
                    "disk_mb": disk_gb * GB,
                    "io_weight": 500,
                    "cpu_percent": cpu,
                    "oom_disabled": True,
                    "databases": dbs,
                    "allocations": 1,
                    "backups": backups,
                    "nest_id": DISCORD_NEST_ID,
                    "egg_id": DISCORD_EGG_ID,
                    "docker_image": "ghcr.io/parkervcp/yolks:nodejs_21",
                    "startup": "node /home/container/${MAIN_FILE} ${NODE_ARGS}",
                    "environment": {},
                    "display_order": order,
                },
            }
        )
    return plans


def catalog_seed_default(*, currency: str | None = None) -> CatalogSeedReport:
    """Create or update the default plans, prices and add-ons. Idempotent.

    <PACKAGE>_EGG_ID / _DOCKER_IMAGE / _STARTUP / _NEST_ID environment overrides are written
    into the plan rows.
    """
    currency = (currency or settings.BILLING_DEFAULT_CURRENCY).upper()
    report = CatalogSeedReport()
    with transaction.atomic():
        locations = list(Location.objects.filter(is_active=True))
        for data in _plan_defaults():
            fields = {**data["fields"], **package_overrides(data["slug"]).as_dict()}
            plan, created = Plan.objects.update_or_create(slug=data["slug"], defaults=fields)
            (report.created if created else report.updated).append(plan.slug)
            if created:
                plan.allowed_locations.set(locations)
            for cycle in BillingCycle:
                PlanPrice.objects.update_or_create(
                    plan=plan,
                    billing_cycle=cycle,
                    currency=currency,
                    defaults={
                        "amount": cycle_price(data["monthly"], cycle),
                        "setup_fee": data["setup_fee"]
                        if cycle == BillingCycle.MONTHLY
                        else Decimal("0"),
                        "is_active": True,
                    },
                )
        addon, created = Addon.objects.update_or_create(
            slug="private-instance",
            defaults={
                "name": "Private Instance",
                "description": "Dedicated resources: +512 MB RAM, +50% CPU, +1 GB disk.",
                "memory_mb": 512,
                "cpu_percent": 50,
                "disk_mb": 1 * GB,
            },
        )
        (report.created if created else report.updated).append(addon.slug)
        if created:
            addon.compatible_plans.set(Plan.objects.filter(category=PlanCategory.DISCORD_BOT))
        for cycle in BillingCycle:
            AddonPrice.objects.update_or_create(
                addon=addon,
                billing_cycle=cycle,
                currency=currency,
                defaults={"amount": cycle_price(Decimal("3.00"), cycle)},
            )
    return report
