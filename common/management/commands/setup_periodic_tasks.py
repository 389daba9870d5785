from django.core.management.base import BaseCommand

from common.services import periodic_tasks_install


class Command(BaseCommand):
    help = "Create or update the beat schedule (django-celery-beat DatabaseScheduler). Idempotent."

    def handle(self, *args, **options) -> None:
        for name in periodic_tasks_install():
            self.stdout.write(f"scheduled: {name}")
