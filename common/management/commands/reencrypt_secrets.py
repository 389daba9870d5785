"""Re-encrypt every encrypted column under the newest key (step 3 of a key rotation).

    manage.py reencrypt_secrets --dry-run   # counts only: what is under an older key
    manage.py reencrypt_secrets             # re-encrypts it

Rotation procedure: config/settings/security.py. Exits non-zero, naming model, field and
primary keys (never a value), when some stored value is not decrypted by any configured key:
the old key is still needed, or that row was written under a key nobody has any more.
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.fields import encrypted_column_reencrypt, encrypted_columns

# How many primary keys of undecryptable rows to print per column.
_MAX_PKS_SHOWN = 50


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column under the newest key (FIELD_ENCRYPTION_KEYS[0])."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would change; write nothing."
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: object, dry_run: bool, batch_size: int, **options: object) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        failed = []
        for column in encrypted_columns():
            report = encrypted_column_reencrypt(
                column=column, batch_size=batch_size, dry_run=dry_run
            )
            bad = report.undecryptable_pks
            self.stdout.write(
                f"{column.label}: {report.values} values, {verb} {report.reencrypted}, "
                f"already under the newest key {report.current}"
                + (f", NOT DECRYPTABLE {len(bad)}" if bad else "")
            )
            if bad:
                shown = ", ".join(str(pk) for pk in bad[:_MAX_PKS_SHOWN])
                more = f" and {len(bad) - _MAX_PKS_SHOWN} more" if len(bad) > _MAX_PKS_SHOWN else ""
                failed.append(f"{column.label} pk {shown}{more}")
        if failed:
            raise CommandError(
                "Some values could not be decrypted with any configured key "
                "(FIELD_ENCRYPTION_KEYS with SECRET_KEY / SECRET_KEY_FALLBACKS); they were left "
                "as they are. Do not drop an old key while this fails. Rows: " + "; ".join(failed)
            )
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
