"""The Celery app. Settings live in config/settings/celery.py (CELERY_ namespace)."""

import os

from celery import Celery

from common.request_id import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.django.local")

# DjangoTask gives every task `delay_on_commit`: nothing is enqueued before the data it needs
# is committed.
app = Celery("portal", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task ids (and the queuing request's id) in log records; our filters on the worker's handlers.
connect_celery_signals()
