"""factory_boy factories for the whole project (exposed as fixtures in conftest.py)."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from billing.models import Addon, AddonPrice, BillingCycle, Coupon, Plan, PlanPrice
from servers.models import Egg, EggVariable, Location, Nest, Node


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"customer{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("correct-horse-battery-9")

    @factory.post_generation
    def email_verified(self, create: bool, extracted: bool | None, **kwargs: object) -> None:
        """The address counts as verified (as after sign-up) unless email_verified=False."""
        if create and extracted is not False and self.email:
            from django.utils import timezone

            from billing.models import VerifiedEmail

            VerifiedEmail.objects.get_or_create(
                user=self, defaults={"email": self.email, "verified_at": timezone.now()}
            )


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}@example.com")
    is_staff = True
    is_superuser = True


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location
        django_get_or_create = ("short_code",)

    short_code = factory.Sequence(lambda n: f"loc{n}")
    long_name = factory.LazyAttribute(lambda o: o.short_code.upper())


class NodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Node

    panel_id = factory.Sequence(lambda n: n + 100)
    name = factory.Sequence(lambda n: f"node-{n}")
    location = factory.SubFactory(LocationFactory)
    memory_mb = 65536
    disk_mb = 1048576
    free_allocations = 10


class NestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Nest
        django_get_or_create = ("panel_id",)

    panel_id = 1
    name = "Minecraft"


class EggFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Egg
        django_get_or_create = ("panel_id",)

    panel_id = 1
    nest = factory.SubFactory(NestFactory)
    name = "Paper"
    docker_image = "ghcr.io/pterodactyl/yolks:java_17"


class EggVariableFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EggVariable

    egg = factory.SubFactory(EggFactory)
    name = factory.LazyAttribute(lambda o: o.env_variable.title())
    env_variable = factory.Sequence(lambda n: f"VAR_{n}")
    default_value = ""
    rules = "nullable|string"


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    memory_mb = 1024
    disk_mb = 5120
    cpu_percent = 100
    databases = 1
    allocations = 1
    backups = 1
    nest_id = 1
    egg_id = 1
    docker_image = "ghcr.io/pterodactyl/yolks:java_17"
    startup = "java -Xms128M -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}"

    @factory.post_generation
    def monthly_price(self, create: bool, extracted: Decimal | None, **kwargs: object) -> None:
        if create:
            PlanPrice.objects.get_or_create(
                plan=self,
                billing_cycle=BillingCycle.MONTHLY,
                currency="USD",
                defaults={"amount": extracted or Decimal("4.00"), "setup_fee": Decimal("1.50")},
            )


class AddonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Addon
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"addon-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    memory_mb = 512
    cpu_percent = 50
    disk_mb = 1024

    @factory.post_generation
    def monthly_price(self, create: bool, extracted: Decimal | None, **kwargs: object) -> None:
        if create:
            AddonPrice.objects.get_or_create(
                addon=self,
                billing_cycle=BillingCycle.MONTHLY,
                currency="USD",
                defaults={"amount": extracted or Decimal("3.00")},
            )


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    code = factory.Sequence(lambda n: f"SAVE{n}")
    kind = "percent"
    value = Decimal("10")
