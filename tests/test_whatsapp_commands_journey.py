"""WhatsApp commands across the apps: a signed webhook from a customer's number is answered
with their servers (provisioning's handler) or a new one-time credentials link, once.

Transactional database and eager Celery: the answer task and the send task run after commit,
as in production; the Cloud API is faked with `responses` on its real endpoint.
"""

import datetime as dt
import hashlib
import hmac
import json
import re
import time

import pytest
import responses
from django.test import Client

from config.celery import app as celery_app
from notifications.models import (
    CredentialReveal,
    CustomerProfile,
    Delivery,
    DeliverySecret,
    InboundMessage,
)
from provisioning.models import PanelAccount
from servers.models import Deployment, DeploymentEvent, DeploymentStatus, Location

pytestmark = pytest.mark.django_db(transaction=True)

WA_BASE = "https://graph.facebook.com/v21.0"
WA_PHONE_ID = "1099887766"
WA_URL = f"{WA_BASE}/{WA_PHONE_ID}/messages"
APP_SECRET = "journey-app-secret"
NUMBER = "+6281234567890"
PASSWORD = "Journey-Pa55word-Zq7!"


@pytest.fixture
def world(settings, catalog, customer, other_customer):
    settings.WHATSAPP_ENABLED = True
    settings.WHATSAPP_API_BASE_URL = WA_BASE
    settings.WHATSAPP_PHONE_NUMBER_ID = WA_PHONE_ID
    settings.WHATSAPP_ACCESS_TOKEN = "EAAGjourneytoken0123456789"
    settings.WHATSAPP_APP_SECRET = APP_SECRET
    settings.WHATSAPP_TEMPLATES = dict.fromkeys(settings.WHATSAPP_TEMPLATES, "")
    settings.CREDENTIALS_DELIVERY = "link"
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    settings.ADMINS = [("", "ops@example.com")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # The customer gets e-mail only by default: the answers still come back on WhatsApp.
    CustomerProfile.objects.create(
        user=customer,
        whatsapp_number=NUMBER,
        whatsapp_verified_number=NUMBER,
        whatsapp_consent=True,
        preferred_language="en",
    )
    location = Location.objects.get(short_code="eu")
    servers = {}
    for n, (name, status, due, owner) in enumerate(
        [
            ("Survival SMP", DeploymentStatus.ACTIVE, dt.date(2026, 12, 1), customer),
            ("Creative", DeploymentStatus.SUSPENDED, dt.date(2026, 11, 20), customer),
            ("Old world", DeploymentStatus.TERMINATED, None, customer),
            ("Mallory's", DeploymentStatus.ACTIVE, dt.date(2026, 12, 9), other_customer),
        ]
    ):
        servers[name] = Deployment.objects.create(
            customer=owner,
            name=name,
            plan_slug="bronze",
            plan_name="Bronze",
            billing_cycle="monthly",
            location=location,
            status=status,
            next_due_date=due,
            panel_server_id=100 + n,
            panel_identifier=f"abc{n}",
        )
    PanelAccount.objects.create(
        user=customer,
        panel_user_id=7,
        external_id="portal-user-journey",
        username="gh_journey",
        email=customer.email,
        password=PASSWORD,
        created_by_portal=True,
    )
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    with responses.RequestsMock(assert_all_requests_are_fired=False) as cloud_api:
        cloud_api.post(
            WA_URL,
            json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUT"}]},
        )
        yield cloud_api, servers
    celery_app.conf.task_always_eager = previous


def webhook(text: str, *, message_id: str, sender: str = NUMBER) -> tuple[bytes, str]:
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"phone_number_id": WA_PHONE_ID},
                                "messages": [
                                    {
                                        "from": sender.lstrip("+"),
                                        "id": message_id,
                                        "timestamp": str(int(time.time())),
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, signature


def post(text: str, *, message_id: str, sender: str = NUMBER):
    body, signature = webhook(text, message_id=message_id, sender=sender)
    response = Client().post(
        "/notifications/whatsapp/webhook/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=signature,
    )
    assert response.status_code == 200, response.content
    return response


def sent(cloud_api) -> list[dict]:
    return [json.loads(call.request.body) for call in cloud_api.calls]


def test_status_lists_the_customers_servers_once(world, customer):
    cloud_api, _servers = world

    post("Status", message_id="wamid.S1")
    post("Status", message_id="wamid.S1")  # redelivered by the Cloud API

    [reply] = Delivery.objects.all()
    assert (reply.event, reply.channel, reply.recipient, reply.status, reply.user) == (
        "whatsapp_command_reply",
        "whatsapp",
        NUMBER,
        "sent",
        customer,
    )
    [message] = sent(cloud_api)
    assert message["to"] == NUMBER.lstrip("+")
    text = message["text"]["body"]
    assert "• Survival SMP: active, next payment due 2026-12-01" in text
    assert "• Creative: suspended, next payment due 2026-11-20" in text
    assert "Old world" not in text  # terminated
    assert "Mallory" not in text  # another customer's
    assert InboundMessage.objects.get().reply == reply


def test_an_unlinked_number_gets_nothing(world):
    cloud_api, _servers = world

    post("status", message_id="wamid.U1", sender="+6289999999999")

    assert InboundMessage.objects.get().outcome == "unlinked"
    assert Delivery.objects.count() == 0
    assert len(cloud_api.calls) == 0


def test_login_sends_a_new_one_time_link_and_never_the_password(world, customer):
    cloud_api, servers = world

    post("login", message_id="wamid.L1")
    post("login", message_id="wamid.L1")

    [delivery] = Delivery.objects.all()
    assert (delivery.event, delivery.channel, delivery.recipient, delivery.status) == (
        "credentials_resent",
        "whatsapp",
        NUMBER,
        "sent",
    )
    assert InboundMessage.objects.get().reply == delivery
    [message] = sent(cloud_api)
    text = message["text"]["body"]
    assert "https://portal.example.com/notifications/credentials/" in text
    assert PASSWORD not in text
    assert PASSWORD not in delivery.body
    assert CredentialReveal.objects.filter(user=customer).count() == 1
    assert DeliverySecret.objects.count() == 1  # until WhatsApp reports it delivered
    # The same audit row as the dashboard's button, saying where it was asked.
    assert DeploymentEvent.objects.filter(
        deployment=servers["Creative"],  # the newest live server: the login is shared
        reason="Login details sent again on request (asked on WhatsApp)",
    ).exists()


def test_login_is_rate_limited_like_the_dashboard(world, settings):
    cloud_api, _servers = world
    settings.CREDENTIALS_RESEND_LIMIT = 1

    post("login", message_id="wamid.L1")
    post("login", message_id="wamid.L2")

    events = list(Delivery.objects.order_by("pk").values_list("event", "context__reply"))
    assert events == [
        ("credentials_resent", None),
        ("whatsapp_command_reply", "login_rate_limited"),
    ]
    assert "several times recently" in sent(cloud_api)[1]["text"]["body"]


def test_login_without_a_live_server_says_so(world, customer):
    cloud_api, _servers = world
    Deployment.objects.filter(customer=customer).update(
        status=DeploymentStatus.TERMINATED, panel_server_id=None
    )

    post("login", message_id="wamid.L1")

    [delivery] = Delivery.objects.all()
    assert delivery.context["reply"] == "login_unavailable"
    assert "None of your servers has a panel login yet" in sent(cloud_api)[0]["text"]["body"]


def test_a_new_number_is_verified_from_the_profile_then_answered(world, customer, settings):
    """The customer's number is unverified (newly typed in): commands get silence until they
    take a code from the profile page and send it to us from that number."""
    cloud_api, _servers = world
    settings.WHATSAPP_DISPLAY_NUMBER = "+6281100000000"
    CustomerProfile.objects.filter(user=customer).update(whatsapp_verified_number="")
    browser = Client()
    browser.force_login(customer)

    post("status", message_id="wamid.J0")
    assert len(cloud_api.calls) == 0
    page = browser.get("/accounts/profile/").content.decode()
    assert "Not verified" in page
    assert "/accounts/profile/whatsapp/verify/" in page
    shown = browser.post("/accounts/profile/whatsapp/verify/")
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    html = shown.content.decode()
    code = re.search(r"VERIFY (\d{6})", html).group(1)
    assert f"https://wa.me/6281100000000?text=VERIFY%20{code}" in html

    post(f"verify {code}", message_id="wamid.J1")
    post("status", message_id="wamid.J2")

    texts = [message["text"]["body"] for message in sent(cloud_api)]
    assert len(texts) == 2
    assert "This number is verified for your account." in texts[0]
    assert "• Survival SMP: active" in texts[1]
    page = browser.get("/accounts/profile/").content.decode()
    assert "Not verified" not in page
    assert f"{NUMBER}, verified on" in page
    assert code not in json.dumps(list(InboundMessage.objects.values()), default=str)
