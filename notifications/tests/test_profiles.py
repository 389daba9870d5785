import pytest

from common.errors import ApplicationError
from notifications.models import CustomerProfile
from notifications.services import customer_profile_upsert

pytestmark = pytest.mark.django_db


def test_number_is_normalised_to_e164(customer):
    profile = customer_profile_upsert(
        user=customer,
        whatsapp_number="+62 812 3456 7890",
        whatsapp_consent=True,
        notify_by_whatsapp=True,
        preferred_language="id",
    )
    assert profile.whatsapp_number == "+6281234567890"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"whatsapp_number": "12"}, "whatsapp_number"),
        ({"whatsapp_number": "+6281234567890", "notify_by_whatsapp": True}, "notify_by_whatsapp"),
        ({"preferred_language": "fr"}, "preferred_language"),
    ],
)
def test_invalid_profiles_are_refused(customer, kwargs, field):
    with pytest.raises(ApplicationError) as caught:
        customer_profile_upsert(user=customer, **kwargs)
    assert field in caught.value.field_errors
    assert not CustomerProfile.objects.exists()


def test_database_refuses_whatsapp_without_consent(customer):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        CustomerProfile.objects.create(
            user=customer, whatsapp_number="+6281234567890", notify_by_whatsapp=True
        )
