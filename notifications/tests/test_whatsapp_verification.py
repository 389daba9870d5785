"""Proving a WhatsApp number: a code from the profile, sent back to us from that number."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from common.errors import ApplicationError
from notifications.commands import command_argument, command_parse
from notifications.models import CustomerProfile, Delivery, InboundMessage
from notifications.services import whatsapp_verification_start
from notifications.services.whatsapp_verification import verification_code_digest
from notifications.tests.conftest import CUSTOMER_NUMBER, run_queued, wa_ok
from notifications.tests.test_whatsapp_commands import STRANGER, inbound, send, sent_texts

pytestmark = [pytest.mark.django_db, pytest.mark.urls("notifications.tests.urls")]

__all__ = ["send"]  # the fixture, imported for these tests


@pytest.fixture
def unverified(customer):
    CustomerProfile.objects.create(
        user=customer, whatsapp_number=CUSTOMER_NUMBER, whatsapp_consent=True
    )
    return customer


def profile_of(user) -> CustomerProfile:
    return CustomerProfile.objects.get(user=user)


@pytest.mark.parametrize(
    ("text", "argument"),
    [("verify 123456", "123456"), ("VERIFY 123 456", "123456"), ("verify", ""), ("x", "")],
)
def test_command_argument(text, argument):
    assert command_argument(text) == argument


def test_verify_words():
    assert command_parse("Verifikasi 1") == command_parse("verify") == "verify"


def test_a_code_from_the_profile_sent_from_the_number_verifies_it(
    unverified, send, mocked_responses
):
    wa_ok(mocked_responses, "wamid.OUT1")
    wa_ok(mocked_responses, "wamid.OUT2")
    issued = whatsapp_verification_start(user=unverified)
    profile = profile_of(unverified)
    assert issued.code not in json.dumps(
        list(CustomerProfile.objects.values()), default=str
    )  # only its HMAC is kept
    assert profile.whatsapp_code_digest == verification_code_digest(issued.code)

    send(inbound("status", message_id="wamid.BEFORE"))  # not verified yet: silence
    send(inbound(f"VERIFY {issued.code}", message_id="wamid.V1"))
    run_queued()

    profile = profile_of(unverified)
    assert profile.whatsapp_verified
    assert profile.whatsapp_verified_at is not None
    assert profile.whatsapp_code_digest == ""  # used once
    before, verify = InboundMessage.objects.order_by("pk")
    assert before.outcome == "unlinked"
    assert (verify.command, verify.outcome, verify.user) == ("verify", "answered", unverified)
    assert issued.code not in json.dumps(
        list(InboundMessage.objects.values()) + list(Delivery.objects.values()), default=str
    )
    [text] = sent_texts(mocked_responses)
    assert "This number is verified for your account." in text
    assert 'Send "status", "login" or "help" any time.' in text

    send(inbound("help", message_id="wamid.AFTER"))  # now answered
    run_queued()
    assert InboundMessage.objects.get(provider_message_id="wamid.AFTER").outcome == "answered"


def test_a_wrong_code_is_answered_and_spends_the_code(unverified, send, mocked_responses, settings):
    settings.WHATSAPP_VERIFICATION_MAX_ATTEMPTS = 2
    wa_ok(mocked_responses, "wamid.OUT1")
    wa_ok(mocked_responses, "wamid.OUT2")
    issued = whatsapp_verification_start(user=unverified)
    wrong = f"{(int(issued.code) + 1) % 10**6:06d}"

    send(inbound(f"verify {wrong}", message_id="wamid.W1"))
    run_queued()
    assert profile_of(unverified).whatsapp_code_attempts == 1
    send(inbound(f"verify {wrong}", message_id="wamid.W2"))
    run_queued()
    # Spent: even the right code no longer works, and no code is pending (silence).
    send(inbound(f"verify {issued.code}", message_id="wamid.W3"))
    run_queued()

    assert not profile_of(unverified).whatsapp_verified
    outcomes = list(InboundMessage.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["answered", "answered", "unlinked"]
    texts = sent_texts(mocked_responses)
    assert len(texts) == 2
    assert all("That code is not right or no longer valid." in t for t in texts)


def test_an_expired_code_or_another_number_gets_nothing(unverified, send, mocked_responses):
    wa_ok(mocked_responses)
    issued = whatsapp_verification_start(user=unverified)

    send(inbound(f"verify {issued.code}", message_id="wamid.X1", sender=STRANGER))
    CustomerProfile.objects.filter(user=unverified).update(
        whatsapp_code_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    send(inbound(f"verify {issued.code}", message_id="wamid.X2"))
    run_queued()

    assert not profile_of(unverified).whatsapp_verified
    assert set(InboundMessage.objects.values_list("outcome", flat=True)) == {"unlinked"}
    assert len(mocked_responses.calls) == 0


def test_a_code_is_for_the_number_it_was_made_for(unverified, send, mocked_responses):
    """The customer changes the number after asking for a code: that code cannot verify the
    new number (nor the old one, which is no longer theirs on the profile)."""
    wa_ok(mocked_responses)
    issued = whatsapp_verification_start(user=unverified)
    CustomerProfile.objects.filter(user=unverified).update(whatsapp_number=STRANGER)

    send(inbound(f"verify {issued.code}", message_id="wamid.N1", sender=STRANGER))
    send(inbound(f"verify {issued.code}", message_id="wamid.N2"))
    run_queued()

    assert not profile_of(unverified).whatsapp_verified
    assert len(mocked_responses.calls) == 0


def test_start_refusals(customer, settings):
    with pytest.raises(ApplicationError) as no_number:
        whatsapp_verification_start(user=customer)
    assert "whatsapp_number" in no_number.value.field_errors
    CustomerProfile.objects.create(user=customer, whatsapp_number=CUSTOMER_NUMBER)
    with pytest.raises(ApplicationError) as no_consent:
        whatsapp_verification_start(user=customer)
    assert "whatsapp_consent" in no_consent.value.field_errors

    CustomerProfile.objects.filter(user=customer).update(whatsapp_consent=True)
    first = whatsapp_verification_start(user=customer)
    with pytest.raises(ApplicationError) as too_soon:
        whatsapp_verification_start(user=customer)
    assert too_soon.value.code == "rate_limited"
    assert profile_of(customer).whatsapp_code_digest == verification_code_digest(first.code)

    CustomerProfile.objects.filter(user=customer).update(whatsapp_verified_number=CUSTOMER_NUMBER)
    with pytest.raises(ApplicationError) as done:
        whatsapp_verification_start(user=customer)
    assert "already verified" in done.value.message
