"""Issue 10, defect 11: the admin cannot delete what holds money, history or a panel server.

Deleting a deployment removed its billing rows and left the panel server orphaned; terminate
(and cancel/refund for orders) are the ways out. The same holds for orders, invoices, coupons,
plans, add-ons and the panel mirror (locations, nodes, nests, eggs).
"""

import pytest
from django.urls import reverse

from billing.models import Invoice, Order
from servers.models import Deployment, Egg, Location, Nest, Node

PROTECTED = [
    ("servers", "deployment"),
    ("servers", "location"),
    ("servers", "node"),
    ("servers", "nest"),
    ("servers", "egg"),
    ("billing", "order"),
    ("billing", "invoice"),
    ("billing", "coupon"),
    ("billing", "plan"),
    ("billing", "addon"),
]


@pytest.fixture
def admin_client(client, staff):
    staff.is_superuser = True
    staff.save(update_fields=["is_superuser"])
    client.force_login(staff)
    return client


@pytest.mark.parametrize(("app", "model"), PROTECTED)
def test_no_delete_action_on_the_list(admin_client, catalog, app, model):
    response = admin_client.get(reverse(f"admin:{app}_{model}_changelist"))
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action is left at all
    actions = dict(form.fields["action"].choices) if form is not None else {}
    assert "delete_selected" not in actions
    assert b'value="delete_selected"' not in response.content


def test_deleting_a_deployment_is_refused_by_url_and_by_action(admin_client, place_order):
    order = place_order()
    deployment = order.deployment
    delete_url = reverse("admin:servers_deployment_delete", args=[deployment.pk])

    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    admin_client.post(
        reverse("admin:servers_deployment_changelist"),
        {"action": "delete_selected", "_selected_action": [deployment.pk], "post": "yes"},
    )
    admin_client.post(
        reverse("admin:billing_order_changelist"),
        {"action": "delete_selected", "_selected_action": [order.pk], "post": "yes"},
    )

    assert Deployment.objects.filter(pk=deployment.pk).exists()
    assert Order.objects.filter(pk=order.pk).exists()
    assert Invoice.objects.filter(order=order).count() == 1
    change = admin_client.get(reverse("admin:servers_deployment_change", args=[deployment.pk]))
    assert delete_url.encode() not in change.content


def test_the_panel_mirror_rows_stay(admin_client, catalog):
    for model in (Location, Node, Nest, Egg):
        row = model.objects.first()
        url = reverse(f"admin:servers_{model._meta.model_name}_delete", args=[row.pk])
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
        assert model.objects.filter(pk=row.pk).exists()
