"""Issue 9, item 6: staff alerts always reach someone, and the operator is told who."""

from io import StringIO

from django.core.management import call_command

from notifications.checks import staff_alert_recipients_check
from notifications.models import Delivery
from notifications.services import notification_send, staff_alert_recipients
from tests.factories import StaffFactory

ALERT = {"title": "Panel unreachable", "detail": "list read failed", "admin_url": "https://x/"}


def test_without_configured_recipients_alerts_go_to_the_active_superusers(db, settings):
    settings.ADMINS, settings.ADMIN_PHONE = [], ""
    StaffFactory(username="root@example.com", is_superuser=True)
    StaffFactory(username="gone@example.com", is_superuser=True, is_active=False)
    StaffFactory(username="support@example.com", is_superuser=False)  # staff, not a superuser

    notification_send(event="fleet_alert_staff", staff=True, context=ALERT, event_key="t:1")

    assert list(Delivery.objects.values_list("recipient", flat=True)) == ["root@example.com"]
    assert staff_alert_recipients() == ("superusers", ["root@example.com"])


def test_configured_recipients_win(db, settings):
    settings.ADMINS, settings.ADMIN_PHONE = [("", "ops@example.com")], ""
    StaffFactory(username="root@example.com", is_superuser=True)

    notification_send(event="fleet_alert_staff", staff=True, context=ALERT, event_key="t:2")

    assert list(Delivery.objects.values_list("recipient", flat=True)) == ["ops@example.com"]
    assert staff_alert_recipients() == ("configured", ["ops@example.com"])
    assert staff_alert_recipients_check() == []


def test_start_up_and_provision_status_say_where_alerts_go(db, settings):
    settings.ADMINS, settings.ADMIN_PHONE = [], ""

    warnings = staff_alert_recipients_check()
    assert [w.id for w in warnings] == ["notifications.W001"]

    out = StringIO()
    call_command("provision_status", stdout=out)
    assert "staff alerts go to:               NOBODY" in out.getvalue()
    StaffFactory(username="root@example.com", is_superuser=True)
    out = StringIO()
    call_command("provision_status", stdout=out)
    assert "the superusers root@example.com" in out.getvalue()
