"""Operations endpoints: /healthz, /readyz, /metrics, request ids and JSON logs.

Failing checks are made real, not faked: the broker, panel or database settings point at a
closed port on this machine. The metrics after a provisioning run come from a real saga run
against the panel simulator (tests/conftest.py `saga`).
"""

import io
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from prometheus_client.parser import text_string_to_metric_families

from billing.services.payments import payment_record_manual
from common.actors import Actor
from common.jobs import job_run
from common.logging import JsonFormatter, LogContextFilter, RedactSecretsFilter
from common.request_id import REQUEST_ID_HEADER, request_id_var
from config.celery import app as celery_app
from provisioning.health import panel_check_cache_clear
from provisioning.models import ProvisioningRun, RunStatus
from provisioning.saga.steps import STEP_NAMES
from tests.support import redis_clear_own_keys

ROOT = Path(settings.BASE_DIR)


@pytest.fixture(autouse=True)
def _fresh_panel_probe():
    panel_check_cache_clear()
    yield
    panel_check_cache_clear()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def matching(samples, name: str, **labels) -> dict[tuple, float]:
    return {
        key: v
        for key, v in samples.items()
        if key[0] == name and all(item in key[1] for item in labels.items())
    }


# --- /healthz -----------------------------------------------------------------------------------


def test_healthz_answers_without_database_host_check_or_https_redirect(client, settings):
    # No django_db mark: any query would fail the test.
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["portal.example.com"]

    response = client.get("/healthz", HTTP_HOST="10.0.0.7:8000")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]
    assert "sessionid" not in response.cookies
    assert len(response[REQUEST_ID_HEADER]) == 32


# --- /readyz ------------------------------------------------------------------------------------


def test_readyz_is_ok_with_database_broker_and_panel_and_reuses_the_panel_answer(saga, client):
    first = client.get("/readyz")
    second = client.get("/readyz")

    assert first.status_code == 200, first.content
    assert first.json() == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "broker": {"status": "ok"},
            "panel": {"status": "ok"},
        },
    }
    assert second.status_code == 200
    # One cheap Application API request for both probes (cached for a few seconds).
    assert len(saga.calls("GET", "/api/application/locations")) == 1


def assert_names_only(response, failing: str, *secrets: str) -> None:
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["failing"] == [failing]
    assert body["checks"][failing]["status"] == "fail"
    assert {name for name, c in body["checks"].items() if c["status"] == "ok"} == (
        {"database", "broker", "panel"} - {failing}
    )
    text = response.content.decode()
    assert "Traceback" not in text
    for secret in secrets:
        assert secret not in text


def test_readyz_names_the_broker_when_it_is_unreachable(saga, client, settings):
    port = closed_port()
    settings.CELERY_BROKER_URL = f"redis://:brokerpass@127.0.0.1:{port}/0"

    response = client.get("/readyz")

    assert_names_only(response, "broker", str(port), "brokerpass", "127.0.0.1")
    assert response.json()["checks"]["broker"]["detail"] == "connection failed"


def test_readyz_names_the_panel_when_it_is_unreachable(db, client, settings):
    port = closed_port()
    settings.PTERODACTYL_URL = f"http://127.0.0.1:{port}"
    settings.PTERODACTYL_RATE_LIMIT_REDIS_URL = None

    response = client.get("/readyz")

    assert_names_only(response, "panel", str(port), settings.PTERODACTYL_ADMIN_API_KEY[:12])
    assert response.json()["checks"]["panel"]["detail"] == "no reply from the panel"


def test_readyz_names_the_panel_when_it_refuses_the_key(saga, client, settings):
    settings.PTERODACTYL_ADMIN_API_KEY = "ptla_wrongkey0000" + "x" * 32

    response = client.get("/readyz")

    assert_names_only(response, "panel", "ptla_wrongkey")
    assert response.json()["checks"]["panel"]["detail"] == "the panel refused the API key"


def test_readyz_names_the_database_when_it_is_unreachable(saga, client):
    connection = connections["default"]
    original = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"] = "127.0.0.1"
    port = str(closed_port())
    connection.settings_dict["PORT"] = port
    try:
        response = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)

    assert_names_only(response, "database", port)
    assert response.json()["checks"]["database"]["detail"] == "query failed (OperationalError)"


# --- /metrics -----------------------------------------------------------------------------------


def pay(order, staff):
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference=f"REF-{order.pk}", actor=Actor.staff(staff)
    )


def test_metrics_after_a_provisioning_run(
    saga, client, place_order, staff, django_assert_num_queries
):
    # Earlier tests of this process may have left messages on its broker queues.
    redis_clear_own_keys()
    before = scrape(client)
    server_creates_before = (
        value(
            before,
            "portal_panel_requests_total",
            method="POST",
            endpoint="/api/application/servers",
            status="201",
        )
        or 0
    )

    pay(place_order(server_name="Metrics SMP"), staff)
    job_run(name="renewals", triggered_by="beat")
    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED

    # A constant number of queries: runs, requests, step attempts, deliveries, job runs (2).
    with django_assert_num_queries(6):
        samples = scrape(client)

    assert value(samples, "portal_provisioning_runs", status="succeeded") == 1
    assert value(samples, "portal_provisioning_requests", status="succeeded") == 1
    assert value(samples, "portal_provisioning_queued") == 0
    # Step latency: every forward step of the run, as a histogram.
    histogram = "portal_provisioning_step_duration_seconds"
    for step in STEP_NAMES:
        labels = {"step": step, "direction": "forward", "status": "succeeded"}
        count = value(samples, f"{histogram}_count", **labels)
        assert count == 1, step
        assert value(samples, f"{histogram}_bucket", le="+Inf", **labels) == count
        assert value(samples, f"{histogram}_sum", **labels) >= 0
    # Panel requests by method, endpoint template and status: the server was created once.
    created = value(
        samples,
        "portal_panel_requests_total",
        method="POST",
        endpoint="/api/application/servers",
        status="201",
    )
    assert created == server_creates_before + 1
    assert matching(
        samples, "portal_panel_requests_total", endpoint="/api/application/servers/{id}"
    )
    # Deliveries by channel and status (the "server ready" e-mail, at least).
    assert sum(matching(samples, "portal_notification_deliveries", channel="email").values()) >= 1
    # Fleet job durations: the last renewals run.
    assert value(samples, "portal_job_runs", job="renewals", status="succeeded") == 1
    assert (
        value(samples, "portal_job_last_duration_seconds", job="renewals", status="succeeded") >= 0
    )
    assert value(samples, "portal_job_last_finished_timestamp_seconds", job="renewals") > 0
    # Broker queue depth, read from Redis under this process's key prefix.
    assert value(samples, "portal_broker_queue_depth_up") == 1
    for queue in ("default", "provisioning", "notifications", "billing"):
        assert value(samples, "portal_broker_queue_messages", queue=queue) == 0
    for collector in (
        "ProvisioningMetricsCollector",
        "DeliveryMetricsCollector",
        "JobRunMetricsCollector",
        "BrokerQueueCollector",
    ):
        assert value(samples, "portal_metrics_collector_up", collector=collector) == 1


def test_broker_queue_depth_counts_waiting_messages_under_our_prefix(db, client):
    redis_clear_own_keys()
    try:
        for _ in range(3):
            celery_app.send_task("tests.metrics_probe", queue="notifications")
        samples = scrape(client)
    finally:
        redis_clear_own_keys()

    assert value(samples, "portal_broker_queue_messages", queue="notifications") == 3


def test_a_broker_that_is_down_does_not_fail_the_scrape(db, client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    samples = scrape(client)

    assert value(samples, "portal_broker_queue_depth_up") == 0
    assert (
        value(samples, "portal_metrics_collector_up", collector="ProvisioningMetricsCollector") == 1
    )


def test_panel_requests_counted_in_another_process_reach_the_scrape(db, client, settings, tmp_path):
    # A worker process counting with PROMETHEUS_MULTIPROC_DIR set, as in production.
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    code = (
        "from common.metrics import panel_request_observe as observe\n"
        "for _ in range(2):\n"
        "    observe(method='POST', path='/api/application/servers/7/suspend', status='204')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, check=True, timeout=60)
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)

    samples = scrape(client)

    assert (
        value(
            samples,
            "portal_panel_requests_total",
            method="POST",
            endpoint="/api/application/servers/{id}/suspend",
            status="204",
        )
        == 2
    )


def test_metrics_need_the_token_once_one_is_configured(db, client, settings):
    settings.METRICS_TOKEN = "metrics-token-0123456789"
    settings.METRICS_ALLOWED_NETWORKS = []

    refused = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789")

    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert b"portal_" not in refused.content + wrong.content
    assert allowed.status_code == 200
    assert b"portal_provisioning_runs" in allowed.content


def test_metrics_without_a_token_answer_only_allowed_networks(db, client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32", "::1/128"]

    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403


def test_the_default_networks_follow_the_token(monkeypatch):
    import importlib

    import config.settings.operations as operations

    def networks(**variables: str) -> list[str]:
        for name in ("METRICS_TOKEN", "METRICS_ALLOWED_NETWORKS"):
            monkeypatch.delenv(name, raising=False)
        for name, text in variables.items():
            monkeypatch.setenv(name, text)
        return importlib.reload(operations).METRICS_ALLOWED_NETWORKS

    try:
        assert networks() == ["127.0.0.1/32", "::1/128"]
        # An empty value (a copied .env.example) is the default, not "nobody".
        assert networks(METRICS_ALLOWED_NETWORKS="") == ["127.0.0.1/32", "::1/128"]
        assert networks(METRICS_TOKEN="t0ken-abc") == []
        assert networks(METRICS_TOKEN="t0ken-abc", METRICS_ALLOWED_NETWORKS="10.0.0.0/8") == [
            "10.0.0.0/8"
        ]
    finally:
        monkeypatch.undo()
        importlib.reload(operations)


# --- Request ids and JSON logs ---------------------------------------------------------------


@pytest.fixture
def json_log():
    """A handler set up as settings.LOGGING sets the console one with LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    handler.addFilter(LogContextFilter())
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous_level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_x_request_id_is_echoed_when_well_formed_and_replaced_when_not(db, client):
    echoed = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a9c01-trace")
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID='bad id"\ninjected')
    page = client.get("/")

    assert echoed[REQUEST_ID_HEADER] == "lb-7f3a9c01-trace"
    assert replaced[REQUEST_ID_HEADER] != 'bad id"\ninjected'
    assert len(replaced[REQUEST_ID_HEADER]) == 32
    assert len(page[REQUEST_ID_HEADER]) == 32


def test_a_json_log_line_of_a_request_carries_its_request_id(saga, client, settings, json_log):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response = client.get("/readyz", HTTP_X_REQUEST_ID="probe-000123")

    assert response.status_code == 503
    records = [r for r in lines(json_log) if r["logger"] == "common.health"]
    assert records == [
        {
            "time": records[0]["time"],
            "level": "WARNING",
            "logger": "common.health",
            "message": "not ready: broker",
            "request_id": "probe-000123",
            "task_id": None,
        }
    ]
    assert records[0]["time"].endswith("+00:00")


def test_json_log_lines_mask_secrets_in_the_message_and_the_traceback(json_log):
    log = logging.getLogger("tests.operations")
    try:
        raise ValueError("password=hunter2 in the traceback")
    except ValueError:
        log.exception("calling with %s", "ptla_abcdefghijk0123456789")

    (record,) = lines(json_log)
    assert record["message"] == "calling with ***"
    assert "hunter2" not in record["exc_info"]
    assert "ValueError" in record["exc_info"]


@celery_app.task(name="tests.operations_log_probe")
def log_probe() -> None:
    logging.getLogger("tests.operations").warning("inside the task")


def test_celery_task_log_lines_carry_the_task_id_and_the_queuing_request_id(json_log):
    token = request_id_var.set("req-0000abcd")
    try:
        result = log_probe.apply()
    finally:
        request_id_var.reset(token)

    (record,) = [r for r in lines(json_log) if r["message"] == "inside the task"]
    assert record["task_id"] == result.id
    assert record["request_id"] == "req-0000abcd"


def test_log_format_json_in_settings_prints_one_json_object_per_line():
    environment = {**os.environ, "LOG_FORMAT": "json"}
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('portal.check').warning('hello token=abc123')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    (line,) = [line for line in result.stderr.splitlines() if "portal.check" in line]
    record = json.loads(line)
    assert record["level"] == "WARNING"
    assert record["logger"] == "portal.check"
    assert record["message"] == "hello token=***"
    assert record["request_id"] is None
