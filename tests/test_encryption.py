"""Secrets at rest fail closed, and `manage.py reencrypt_secrets` rotates keys.

The library alone (encrypted_fields) returned the ciphertext as the value when no key fitted;
our fields (common.fields) raise UndecryptableValueError instead. The keys follow the settings
of the moment (no per-field cache), so the `settings` fixture is all a test needs.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from encrypted_fields.fields import EncryptedCharField as LibraryEncryptedCharField

from common.fields import UndecryptableValueError, encrypted_columns, encryption_keys
from notifications.models import CredentialReveal
from provisioning.models import PanelAccount
from tests import factories

pytestmark = pytest.mark.django_db

KEY_A = "field-encryption-key-A"
KEY_B = "field-encryption-key-B"
PASSWORD = "Sup3r-secret-panel-pw"


def use_keys(settings, *salts: str, secret_key: str | None = None, fallbacks=()) -> None:
    settings.FIELD_ENCRYPTION_KEYS = list(salts)
    settings.SALT_KEY = list(salts)
    if secret_key is not None:
        settings.SECRET_KEY = secret_key
    settings.SECRET_KEY_FALLBACKS = list(fallbacks)


def account(n: int = 0, password: str | None = PASSWORD) -> PanelAccount:
    user = factories.UserFactory(username=f"enc{n}@example.com")
    return PanelAccount.objects.create(
        user=user,
        external_id=f"portal-user-enc-{n}",
        username=f"enc{n}",
        email=user.email,
        password=f"{password}-{n}" if password else password,
    )


def raw(model, pk, column: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {model._meta.db_table} WHERE {model._meta.pk.column} = %s",  # noqa: S608
            [pk],
        )
        return cursor.fetchone()[0]


def reencrypt(*args: str) -> str:
    out = StringIO()
    call_command("reencrypt_secrets", *args, stdout=out)
    return out.getvalue()


# --- Fail closed -------------------------------------------------------------------------------


def test_a_wrong_key_raises_a_clear_error_not_the_ciphertext(settings):
    use_keys(settings, KEY_A)
    pk = account().pk
    stored = raw(PanelAccount, pk, "password")

    use_keys(settings, KEY_B)
    with pytest.raises(UndecryptableValueError) as error:
        PanelAccount.objects.get(pk=pk)

    message = str(error.value)
    assert message.startswith("PanelAccount.password could not be decrypted with the configured")
    assert "the value is not shown" in message
    for secret in (stored, PASSWORD, KEY_A, KEY_B, settings.SECRET_KEY):
        assert secret not in message
    assert error.value.__cause__ is None  # no chained InvalidToken carrying anything


def test_a_wrong_secret_key_fails_closed_too(settings):
    use_keys(settings, KEY_A)
    pk = account().pk
    use_keys(settings, KEY_A, secret_key="another-secret-key-0123456789-abcdefghijklmnopqrstuv")

    with pytest.raises(UndecryptableValueError):
        PanelAccount.objects.get(pk=pk)


def test_null_and_empty_values_stay_empty_under_any_key(settings):
    use_keys(settings, KEY_A)
    none_pk = account(1, password=None).pk
    empty_pk = account(2).pk
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE provisioning_panelaccount SET password = '' WHERE id = %s", [empty_pk]
        )

    use_keys(settings, KEY_B)
    assert PanelAccount.objects.get(pk=none_pk).password is None
    assert PanelAccount.objects.get(pk=empty_pk).password == ""


def test_values_round_trip_and_the_column_is_not_plaintext(settings):
    use_keys(settings, KEY_A)
    pk = account().pk

    assert PanelAccount.objects.get(pk=pk).password == f"{PASSWORD}-0"
    assert PASSWORD not in raw(PanelAccount, pk, "password")
    assert PanelAccount.objects.values_list("password", flat=True).get(pk=pk) == f"{PASSWORD}-0"


def test_our_keys_are_the_librarys_so_existing_rows_stay_readable(settings):
    use_keys(settings, KEY_B, KEY_A, secret_key="new-secret", fallbacks=["old-secret"])
    library_field = LibraryEncryptedCharField(max_length=10)

    assert list(encryption_keys()) == library_field.keys
    token = library_field.get_prep_value("written by the library")
    field = PanelAccount._meta.get_field("password")
    assert field.from_db_value(token, None, connection) == "written by the library"


def test_every_encrypted_column_is_ours_and_found():
    labels = {column.label for column in encrypted_columns()}

    assert labels >= {
        "provisioning.PanelAccount.password",
        "notifications.DeliverySecret.values",
        "notifications.CredentialReveal.secrets",
    }
    # The lenient library classes must not come back in a model.
    assert all(type(column.field).__module__ == "common.fields" for column in encrypted_columns())


# --- Rotation ----------------------------------------------------------------------------------


def reveal(user, n: int) -> CredentialReveal:
    now = timezone.now()
    return CredentialReveal.objects.create(
        user=user,
        token_hash=f"{n:064d}",
        secrets='{"panel_password": "x"}',
        expires_at=now + timedelta(days=1),
    )


def test_rotation_new_key_first_reencrypt_then_drop_the_old(settings):
    use_keys(settings, KEY_A)
    accounts = [account(n) for n in range(3)]
    account(9, password=None)
    secret = reveal(accounts[0].user, 1)
    before = {a.pk: raw(PanelAccount, a.pk, "password") for a in accounts}

    use_keys(settings, KEY_B, KEY_A)  # 1. the new key first, the old one still decrypts
    assert PanelAccount.objects.get(pk=accounts[0].pk).password == f"{PASSWORD}-0"
    out = reencrypt()  # 2. re-encrypt under the new key
    assert "provisioning.PanelAccount.password: 3 values, re-encrypted 3" in out
    assert "notifications.CredentialReveal.secrets: 1 values, re-encrypted 1" in out

    use_keys(settings, KEY_B)  # 3. drop the old key
    for n, a in enumerate(accounts):
        assert PanelAccount.objects.get(pk=a.pk).password == f"{PASSWORD}-{n}"
        assert raw(PanelAccount, a.pk, "password") != before[a.pk]
    assert CredentialReveal.objects.get(pk=secret.pk).secrets == '{"panel_password": "x"}'
    assert PanelAccount.objects.get(username="enc9").password is None


def test_secret_key_rotation_through_the_fallbacks(settings):
    old, new = "old-secret-key-" + "o" * 40, "new-secret-key-" + "n" * 40
    use_keys(settings, KEY_A, secret_key=old)
    pk = account().pk

    use_keys(settings, KEY_A, secret_key=new, fallbacks=[old])
    reencrypt()
    use_keys(settings, KEY_A, secret_key=new)

    assert PanelAccount.objects.get(pk=pk).password == f"{PASSWORD}-0"


def test_reencrypt_is_idempotent(settings):
    use_keys(settings, KEY_A)
    pk = account().pk
    use_keys(settings, KEY_B, KEY_A)
    reencrypt()
    after_first = raw(PanelAccount, pk, "password")

    out = reencrypt()

    assert "provisioning.PanelAccount.password: 1 values, re-encrypted 0, already under" in out
    assert raw(PanelAccount, pk, "password") == after_first


def test_dry_run_counts_and_changes_nothing(settings):
    use_keys(settings, KEY_A)
    pks = [account(n).pk for n in range(2)]
    before = {pk: raw(PanelAccount, pk, "password") for pk in pks}
    use_keys(settings, KEY_B, KEY_A)

    out = reencrypt("--dry-run")

    assert "provisioning.PanelAccount.password: 2 values, would re-encrypt 2" in out
    assert "Dry run: nothing was written." in out
    assert {pk: raw(PanelAccount, pk, "password") for pk in pks} == before
    use_keys(settings, KEY_A)  # still readable under the old key alone
    assert PanelAccount.objects.get(pk=pks[0]).password == f"{PASSWORD}-0"


def test_a_row_under_an_unknown_key_fails_the_command_naming_model_and_pk(settings):
    use_keys(settings, "a-key-nobody-has-any-more")
    lost = account(1)
    lost_token = raw(PanelAccount, lost.pk, "password")
    use_keys(settings, KEY_A)
    fine = account(2)
    use_keys(settings, KEY_B, KEY_A)

    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("reencrypt_secrets", stdout=out)

    message = str(error.value)
    assert f"provisioning.PanelAccount.password pk {lost.pk}" in message
    assert "could not be decrypted with any configured key" in message
    assert lost_token not in message + out.getvalue()
    assert PASSWORD not in message + out.getvalue()
    assert "NOT DECRYPTABLE 1" in out.getvalue()
    # The others were still re-encrypted; the lost row is left as it was.
    use_keys(settings, KEY_B)
    assert PanelAccount.objects.get(pk=fine.pk).password == f"{PASSWORD}-2"
    assert raw(PanelAccount, lost.pk, "password") == lost_token


def test_unknown_key_fails_the_dry_run_too(settings):
    use_keys(settings, "a-key-nobody-has-any-more")
    lost = account(1)
    use_keys(settings, KEY_A)

    with pytest.raises(CommandError, match=f"PanelAccount.password pk {lost.pk}"):
        reencrypt("--dry-run")


def test_reencrypt_works_in_batches_with_constant_queries(settings):
    use_keys(settings, KEY_A)
    for n in range(7):
        account(n)
    use_keys(settings, KEY_B, KEY_A)

    with CaptureQueriesContext(connection) as queries:
        out = reencrypt("--batch-size", "3")

    assert "provisioning.PanelAccount.password: 7 values, re-encrypted 7" in out
    panel_sql = [
        q["sql"] for q in queries.captured_queries if "provisioning_panelaccount" in q["sql"]
    ]
    updates = [sql for sql in panel_sql if sql.startswith("UPDATE")]
    assert len(updates) == 3  # batches of 3, 3 and 1
    assert len(panel_sql) == 3 + 4  # and a SELECT per batch, plus the empty one that ends it
    use_keys(settings, KEY_B)
    assert sorted(PanelAccount.objects.values_list("password", flat=True)) == [
        f"{PASSWORD}-{n}" for n in range(7)
    ]
