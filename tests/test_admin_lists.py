"""Fleet-sized admin lists: filter choices from the indexes (no scan of the table), no date
hierarchy, no full count; the filters still filter."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from common.admin import distinct_values
from common.dates import billing_today
from servers.models import Deployment
from tests.fleet import fleet_seed


def test_distinct_values_hop_through_the_index(catalog):
    fleet_seed(count=5, next_due_date=billing_today(), plan_slug="bronze")
    fleet_seed(count=3, next_due_date=billing_today(), plan_slug="gold")

    assert distinct_values(Deployment, "plan_slug") == ["bronze", "gold"]


def test_deployment_list_filters_by_plan_without_reading_every_row(catalog, admin_client):
    fleet_seed(count=4, next_due_date=billing_today(), plan_slug="bronze")
    fleet_seed(count=2, next_due_date=billing_today(), plan_slug="gold")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/servers/deployment/?plan_slug=gold")

    assert response.status_code == 200
    assert response.context["cl"].result_count == 2
    sql = [q["sql"] for q in queries.captured_queries]
    assert not any("SELECT DISTINCT" in s and "servers_deployment" in s for s in sql)
    assert not any("DATE_TRUNC" in s.upper() for s in sql)  # no date hierarchy
    assert any("WITH RECURSIVE" in s for s in sql) == (connection.vendor == "postgresql")
