"""A fleet of live servers written straight into the database (bulk inserts), for the fleet-job
tests and tests/benchmarks/bench_fleet.py. Each server has its customer, a completed order of the
catalog plan (with the Private Instance add-on on every third one) and a panel server id; no
panel is involved. Needs the demo catalog (the `catalog` fixture / catalog_seed_default)."""

import datetime as dt
import itertools
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.models import Addon, Order, OrderAddon, OrderStatus, Plan
from servers.models import Deployment, DeploymentStatus, Location

_seeds = itertools.count()
_panel_ids = itertools.count(1_000_000, 1_000_000)  # each seed gets its own block of ids


@dataclass(frozen=True)
class Fleet:
    deployment_ids: list[int]
    first_panel_server_id: int


def fleet_seed(
    *,
    count: int,
    next_due_date: dt.date,
    plan_slug: str = "bronze",
    status: str = DeploymentStatus.ACTIVE,
    first_panel_server_id: int | None = None,
    chunk: int = 5000,
    addon_every: int = 3,
) -> Fleet:
    """`count` live servers due on `next_due_date`, in chunks of bulk inserts."""
    if first_panel_server_id is None:
        first_panel_server_id = next(_panel_ids)
    user_model = get_user_model()
    plan = Plan.objects.get(slug=plan_slug)
    location = Location.objects.order_by("pk").first()
    addon = Addon.objects.order_by("pk").first()
    now = timezone.now()
    confirmed_at = now - dt.timedelta(days=20)
    stamp = f"{int(now.timestamp() * 1000)}-{next(_seeds)}"
    ids: list[int] = []
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        users = user_model.objects.bulk_create(
            user_model(
                username=f"fleet-{stamp}-{start + n}@example.com",
                email=f"fleet-{stamp}-{start + n}@example.com",
                password="!",  # unusable: these customers never log in
            )
            for n in range(size)
        )
        deployments = Deployment.objects.bulk_create(
            Deployment(
                customer=user,
                name=f"server-{start + n}",
                plan_slug=plan.slug,
                plan_name=plan.name,
                billing_cycle="monthly",
                location=location,
                status=status,
                next_due_date=next_due_date,
                panel_server_id=first_panel_server_id + start + n,
                panel_identifier=f"{start + n:08x}",
                activated_at=confirmed_at,
                suspended_at=now if status == DeploymentStatus.SUSPENDED else None,
                spec={"limits": {"memory": plan.memory_mb}},
            )
            for n, user in enumerate(users)
        )
        orders = Order.objects.bulk_create(
            Order(
                customer=deployment.customer,
                plan=plan,
                billing_cycle="monthly",
                location=location,
                currency="USD",
                server_name=deployment.name,
                deployment=deployment,
                status=OrderStatus.COMPLETED,
                confirmed_at=confirmed_at,
                completed_at=confirmed_at,
            )
            for deployment in deployments
        )
        if addon is not None and addon_every:
            OrderAddon.objects.bulk_create(
                OrderAddon(order=order, addon=addon, name=addon.name, amount="1.00")
                for n, order in enumerate(orders)
                if n % addon_every == 0
            )
        ids.extend(d.pk for d in deployments)
    return Fleet(deployment_ids=ids, first_panel_server_id=first_panel_server_id)
