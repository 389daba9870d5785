from django.contrib.auth.models import AbstractBaseUser

from notifications.models import CustomerProfile


def customer_profile_get(*, user: AbstractBaseUser) -> CustomerProfile | None:
    return CustomerProfile.objects.filter(user=user).first()
