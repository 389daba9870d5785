"""WhatsApp commands: inbound messages are stored once, answered once, only for linked numbers."""

import datetime as dt
import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from notifications.commands import command_parse
from notifications.models import (
    CustomerProfile,
    Delivery,
    InboundCommand,
    InboundMessage,
    InboundOutcome,
)
from notifications.selectors import customer_event_specs
from notifications.services.inbound import PENDING_RESUME_AFTER, whatsapp_command_answer
from notifications.tasks import resume_stalled, whatsapp_command
from notifications.tests.conftest import CUSTOMER_NUMBER, WA_PHONE_ID, WA_URL, run_queued, wa_ok
from notifications.tests.test_webhook import post, sign

pytestmark = [pytest.mark.django_db, pytest.mark.urls("notifications.tests.urls")]

STRANGER = "+6289999999999"


def inbound(
    text: str | None = "help",
    *,
    message_id: str = "wamid.IN1",
    sender: str = CUSTOMER_NUMBER,
    timestamp: int | None = None,
    message_type: str = "text",
    phone_number_id: str = WA_PHONE_ID,
    **extra,
) -> bytes:
    """A Cloud API webhook body carrying one message a customer sent us."""
    message = {
        "from": sender.lstrip("+"),
        "id": message_id,
        "timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "type": message_type,
        **extra,
    }
    if message_type == "text":
        message["text"] = {"body": text}
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA_ID",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "6281100000000",
                                    "phone_number_id": phone_number_id,
                                },
                                "contacts": [
                                    {"profile": {"name": "Alice"}, "wa_id": sender.lstrip("+")}
                                ],
                                "messages": [message],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


@pytest.fixture
def send(client, django_capture_on_commit_callbacks):
    """POST a signed webhook, then run the answer task of each message it enqueued after
    commit (in this process; the replies stay queued for run_queued)."""

    def _send(body: bytes):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = post(client, body)
        assert response.status_code == 200, response.content
        assert len(callbacks) == InboundMessage.objects.filter(outcome="pending").count()
        for row in InboundMessage.objects.filter(outcome="pending").order_by("pk"):
            with django_capture_on_commit_callbacks(execute=False):
                whatsapp_command.apply(args=[row.pk]).get()
        return response

    return _send


def sent_texts(mocked) -> list[str]:
    return [
        json.loads(call.request.body)["text"]["body"]
        for call in mocked.calls
        if call.request.url == WA_URL
    ]


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("status", InboundCommand.STATUS),
        ("  STATUS \n", InboundCommand.STATUS),
        ("!server-status 12", InboundCommand.STATUS),
        ("help", InboundCommand.HELP),
        ("!help", InboundCommand.HELP),
        ("Bantuan", InboundCommand.HELP),
        ("login please", InboundCommand.LOGIN),
        ("/Login", InboundCommand.LOGIN),
        ("login?", InboundCommand.LOGIN),
        ("hello", InboundCommand.UNKNOWN),
        ("statuses", InboundCommand.UNKNOWN),
        ("", InboundCommand.UNKNOWN),
    ],
)
def test_command_parse(text, command):
    assert command_parse(text) == command


def test_help_from_a_linked_number_is_answered_once_in_the_customer_language(
    wa_customer, send, mocked_responses
):
    wa_ok(mocked_responses, "wamid.OUT1")
    body = inbound("Bantuan", message_id="wamid.IN1")

    send(body)
    run_queued()
    send(body)  # the Cloud API redelivers the same webhook
    run_queued()

    row = InboundMessage.objects.get()
    assert (row.command, row.outcome, row.user, row.sender) == (
        "help",
        "answered",
        wa_customer,
        CUSTOMER_NUMBER,
    )
    reply = Delivery.objects.get()
    assert row.reply == reply
    assert (reply.event, reply.channel, reply.recipient, reply.language, reply.status) == (
        "whatsapp_command_reply",
        "whatsapp",
        CUSTOMER_NUMBER,
        "id",
        "sent",
    )
    [text] = sent_texts(mocked_responses)
    assert "Kirim salah satu kata berikut" in text
    assert "bantuan: daftar ini" in text
    assert "Maaf" not in text
    assert reply.body == text  # the logged copy


def test_a_message_whose_task_was_lost_is_answered_by_the_sweeper(
    wa_customer, client, mocked_responses, django_capture_on_commit_callbacks
):
    wa_ok(mocked_responses, "wamid.OUT1")
    with django_capture_on_commit_callbacks(execute=False) as lost:
        assert post(client, inbound("help", message_id="wamid.LOST")).status_code == 200
    assert len(lost) == 1  # the enqueue that never reached the broker
    row = InboundMessage.objects.get()

    # Within PENDING_RESUME_AFTER the first task may still be on its way: left alone.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert resume_stalled.apply().get() == 0
    assert callbacks == []
    InboundMessage.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - PENDING_RESUME_AFTER - dt.timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert resume_stalled.apply().get() == 1
    assert len(callbacks) == 1
    # What that enqueue runs on the worker (as the send fixture does for the webhook's).
    with django_capture_on_commit_callbacks(execute=False):
        assert whatsapp_command.apply(args=[row.pk]).get() == "answered"
    run_queued()

    row.refresh_from_db()
    assert (row.outcome, row.reply.status) == ("answered", "sent")
    assert len(sent_texts(mocked_responses)) == 1
    # Answered: the next sweep has nothing to do.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert resume_stalled.apply().get() == 0


def test_unknown_command_gets_the_help_text(customer, send, mocked_responses):
    CustomerProfile.objects.create(
        user=customer,
        whatsapp_number=CUSTOMER_NUMBER,
        whatsapp_verified_number=CUSTOMER_NUMBER,
        whatsapp_consent=True,
    )
    wa_ok(mocked_responses)

    send(inbound("hello there"))
    run_queued()

    assert InboundMessage.objects.get().command == "unknown"
    [text] = sent_texts(mocked_responses)
    assert "Sorry, that is not a command we know." in text
    assert "status: your servers" in text
    assert "login: a new one-time link" in text


def test_the_message_text_is_never_stored(wa_customer, send, mocked_responses):
    wa_ok(mocked_responses)

    send(inbound("login Hunter2-Secret-Passw0rd"))

    stored = json.dumps(list(InboundMessage.objects.values()), default=str)
    stored += json.dumps(list(Delivery.objects.values()), default=str)
    assert "Hunter2" not in stored
    assert InboundMessage.objects.get().command == "login"


@pytest.mark.parametrize(
    "case", ["stranger", "no_consent", "unverified", "changed_number", "inactive", "two_accounts"]
)
def test_unlinked_numbers_get_nothing(case, customer, other_customer, send, mocked_responses):
    verified = {"whatsapp_number": CUSTOMER_NUMBER, "whatsapp_verified_number": CUSTOMER_NUMBER}
    if case == "no_consent":
        CustomerProfile.objects.create(user=customer, **verified)
    elif case == "unverified":
        CustomerProfile.objects.create(
            user=customer, whatsapp_number=CUSTOMER_NUMBER, whatsapp_consent=True
        )
    elif case == "changed_number":
        # Verified an earlier number, then typed this one in: not verified until proven.
        CustomerProfile.objects.create(
            user=customer,
            whatsapp_number=CUSTOMER_NUMBER,
            whatsapp_verified_number="+6281200000001",
            whatsapp_consent=True,
        )
    elif case == "inactive":
        CustomerProfile.objects.create(user=customer, whatsapp_consent=True, **verified)
        get_user_model().objects.filter(pk=customer.pk).update(is_active=False)
    elif case == "two_accounts":
        for user in (customer, other_customer):
            CustomerProfile.objects.create(user=user, whatsapp_consent=True, **verified)
    sender = STRANGER if case == "stranger" else CUSTOMER_NUMBER

    response = send(inbound("status", sender=sender))
    run_queued()

    assert response.json() == {"received": True, "applied": 0}  # the same answer for everyone
    row = InboundMessage.objects.get()
    assert (row.outcome, row.user, row.reply) == ("unlinked", None, None)
    assert row.handled_at is not None
    assert Delivery.objects.count() == 0
    assert len(mocked_responses.calls) == 0


def test_replies_are_rate_limited_per_number(wa_customer, send, mocked_responses, settings):
    settings.WHATSAPP_COMMAND_REPLY_LIMIT = 2
    wa_ok(mocked_responses)

    for n in range(4):
        send(inbound("help", message_id=f"wamid.FLOOD{n}"))

    outcomes = list(InboundMessage.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["answered", "answered", "rate_limited", "rate_limited"]
    assert Delivery.objects.count() == 2


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"message_type": "image", "image": {"id": "media-1"}}, "not text"),
        ({"timestamp": int(time.time()) - 25 * 3600}, "outside the 24 h reply window"),
    ],
)
def test_messages_that_cannot_be_answered_are_ignored(wa_customer, send, kwargs, why):
    send(inbound("help", **kwargs))

    assert InboundMessage.objects.get().outcome == "ignored", why
    assert Delivery.objects.count() == 0


def test_nothing_is_answered_while_whatsapp_is_disabled(wa_customer, send, settings):
    settings.WHATSAPP_ENABLED = False

    send(inbound("help"))

    assert InboundMessage.objects.get().outcome == "ignored"
    assert Delivery.objects.count() == 0


def test_a_message_to_another_phone_number_id_is_not_ours(wa_customer, send):
    send(inbound("help", phone_number_id="5550001111"))

    assert InboundMessage.objects.count() == 0


def test_a_malformed_message_rejects_the_whole_body(wa_customer, client):
    body = json.loads(inbound("help"))
    body["entry"][0]["changes"][0]["value"]["messages"].append({"id": 42, "from": "1"})
    raw = json.dumps(body).encode()

    response = post(client, raw)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_payload"
    assert InboundMessage.objects.count() == 0


def test_an_unsigned_message_is_refused(wa_customer, client):
    response = post(client, inbound("help"), signature=sign(b"other body"))

    assert response.status_code == 403
    assert InboundMessage.objects.count() == 0


def test_the_answer_task_is_safe_to_run_twice(
    wa_customer, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post(client, inbound("help"))
    assert len(callbacks) == 1  # one task, enqueued after commit
    row = InboundMessage.objects.get()
    assert row.outcome == InboundOutcome.PENDING

    with django_capture_on_commit_callbacks(execute=False):
        assert whatsapp_command.apply(args=[row.pk]).get() == "answered"
        assert whatsapp_command_answer(inbound_id=row.pk) == "answered"

    assert Delivery.objects.count() == 1


def test_the_reply_event_is_not_a_preference_choice():
    assert "whatsapp_command_reply" not in {spec.event for spec in customer_event_specs()}


def test_admin_lists_inbound_messages_read_only(wa_customer, send, admin_client):
    send(inbound("help"))
    row = InboundMessage.objects.get()

    listing = admin_client.get(reverse("admin:notifications_inboundmessage_changelist"))
    detail = admin_client.get(reverse("admin:notifications_inboundmessage_change", args=[row.pk]))

    assert listing.status_code == 200
    assert CUSTOMER_NUMBER in listing.content.decode()
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    add = admin_client.get(reverse("admin:notifications_inboundmessage_add"))
    assert add.status_code == 403
