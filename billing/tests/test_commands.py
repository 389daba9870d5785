from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import AddonPrice, Order, OrderStatus, Plan, PlanPrice
from provisioning.models import ProvisioningRequest

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_catalog_is_idempotent_and_loads_the_guide_tables():
    run("seed_catalog")
    counts = (Plan.objects.count(), PlanPrice.objects.count(), AddonPrice.objects.count())
    run("seed_catalog")
    assert (Plan.objects.count(), PlanPrice.objects.count(), AddonPrice.objects.count()) == counts
    assert counts == (8, 32, 4)

    table = {
        p.slug: (p.memory_mb, p.cpu_percent, p.disk_mb, p.databases, p.allocations, p.backups)
        for p in Plan.objects.all()
    }
    assert table == {
        "bronze": (1024, 100, 5120, 1, 1, 1),
        "silver": (2048, 200, 10240, 2, 2, 2),
        "gold": (4096, 400, 20480, 3, 3, 3),
        "platinum": (8192, 800, 40960, 5, 5, 5),
        "diamond": (16384, 1600, 81920, 10, 10, 10),
        "starter": (512, 50, 1024, 0, 1, 1),
        "pro": (1024, 100, 2048, 1, 1, 3),
        "business": (2048, 200, 5120, 3, 1, 7),
    }
    assert sorted(
        Plan.objects.get(slug="bronze").allowed_locations.values_list("short_code", flat=True)
    ) == ["eu", "us"]


def test_seed_catalog_honours_package_overrides(settings):
    # BRONZE_EGG_ID=7 etc. in the environment, as config/settings/billing.py reads them (the
    # environment -> PACKAGE_OVERRIDES step has its own test in tests/test_env_aliases.py).
    settings.PACKAGE_OVERRIDES = {
        "BRONZE": {
            "egg_id": 7,
            "docker_image": "ghcr.io/pterodactyl/yolks:java_21",
            "startup": "java -jar custom.jar",
        }
    }
    run("seed_catalog")
    bronze = Plan.objects.get(slug="bronze")
    assert (bronze.egg_id, bronze.docker_image, bronze.startup) == (
        7,
        "ghcr.io/pterodactyl/yolks:java_21",
        "java -jar custom.jar",
    )
    assert Plan.objects.get(slug="silver").egg_id == 1


def test_order_confirm_and_order_detail(place_order):
    order = place_order()

    output = run("order_confirm", str(order.pk), "--reference", "BCA-1")

    assert f"Order #{order.pk} confirmed" in output
    order.refresh_from_db()
    assert order.status == OrderStatus.PROVISIONING
    payment = order.invoices.get().payments.get()
    assert payment.reference == "BCA-1"
    assert payment.actor_label.startswith("cli:")
    assert ProvisioningRequest.objects.count() == 1

    detail = run("order_detail", f"#{order.pk}")
    assert "status=provisioning" in detail
    assert "payment: manual 5.50 USD ref=BCA-1" in detail
    assert "provisioning request: #" in detail
    assert "status=in_progress" in detail
    history = [" ".join(line.split()) for line in detail.splitlines()]
    assert any("order pending -> confirmed by cli:" in line for line in history)
    assert any("invoice" in line and "unpaid -> paid" in line for line in history)

    with pytest.raises(CommandError, match="Nothing was changed"):
        run("order_confirm", str(order.pk))
    assert ProvisioningRequest.objects.count() == 1


@pytest.mark.parametrize("reference", ["999999", "abc"])
def test_order_commands_reject_unknown_orders(catalog, reference):
    with pytest.raises(CommandError):
        run("order_confirm", reference)
    with pytest.raises(CommandError):
        run("order_detail", reference)


def test_stale_unpaid_orders_are_cancelled_by_the_job(place_order, settings):
    import datetime as dt

    from django.utils import timezone

    from billing.services.maintenance import orders_cancel_stale_unpaid

    stale = place_order()
    fresh = place_order()
    Order.objects.filter(pk=stale.pk).update(created_at=timezone.now() - dt.timedelta(days=8))

    assert orders_cancel_stale_unpaid() == 1
    assert orders_cancel_stale_unpaid() == 0  # safe to run twice
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == OrderStatus.CANCELLED
    assert fresh.status == OrderStatus.PENDING
    assert stale.events.last().actor_label == "system:beat"


def test_setup_periodic_tasks_is_idempotent(db):
    from django_celery_beat.models import PeriodicTask

    run("setup_periodic_tasks")
    run("setup_periodic_tasks")
    assert PeriodicTask.objects.filter(task="common.worker_heartbeat").count() == 4
    assert PeriodicTask.objects.get(task="billing.cancel_stale_unpaid_orders").queue == "billing"
