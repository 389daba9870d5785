from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "demo-admin-password"


class Command(BaseCommand):
    help = "Create the demo staff login for `make run` (refused when DEBUG is off)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_admin only runs with DEBUG on (local demo settings).")
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USERNAME).first()
        if user is None:
            user = user_model.objects.create_superuser(
                DEMO_USERNAME, "admin@example.com", DEMO_PASSWORD
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo admin: http://127.0.0.1:8000/admin/  user '{DEMO_USERNAME}'  "
                f"password '{DEMO_PASSWORD}' (demo only); at the first login the admin "
                "asks you to set up an authenticator app (or use `oathtool --totp -b <secret>`)"
            )
        )
