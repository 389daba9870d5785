"""Encrypted model fields that fail closed.

django-fernet-encrypted-fields (`encrypted_fields`) decrypts in `to_python` and, when no key
fits (InvalidToken), returns the stored ciphertext as if it were the value: with a wrong or
dropped key a panel password silently becomes a Fernet token, which we would then send to the
panel or to the customer. These subclasses keep the library's format and keys (existing rows
stay readable) and change three things:

- reading from the database raises `UndecryptableValueError` when no configured key
  decrypts the value (NULL stays None and "" stays "");
- the keys come from the settings of the moment, not a per-field cache filled on first use
  (so `override_settings` and a reload after rotation see the new keys), and the derivation
  (PBKDF2, 100,000 rounds per key) is cached per key set;
- `encrypted_column_reencrypt` re-encrypts a column under the newest key, in batches
  (manage.py reencrypt_secrets).

How a key is derived: see config/settings/security.py.
"""

import base64
import functools
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Cast
from encrypted_fields import fields as library

# The library's derivation; changing any of these makes every stored secret unreadable.
_KDF_ITERATIONS = 100_000
_KDF_LENGTH = 32


class UndecryptableValueError(Exception):
    """A stored encrypted value that no configured key decrypts. Names the column, never the
    value (nor the ciphertext, nor a key)."""

    def __init__(self, *, model_label: str, field_name: str) -> None:
        self.model_label = model_label
        self.field_name = field_name
        super().__init__(
            f"{model_label}.{field_name} could not be decrypted with the configured keys "
            "(FIELD_ENCRYPTION_KEYS with SECRET_KEY / SECRET_KEY_FALLBACKS): check the keys; "
            "the value is not shown"
        )


def encryption_key_material() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(secret keys, salts) from the settings: SECRET_KEY then SECRET_KEY_FALLBACKS, and
    FIELD_ENCRYPTION_KEYS (or the library's own name for it, SALT_KEY)."""
    salts = getattr(settings, "FIELD_ENCRYPTION_KEYS", None) or getattr(settings, "SALT_KEY", [])
    if isinstance(salts, str):
        salts = [salts]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not salts or not all(secrets):
        raise ImproperlyConfigured(
            "Encrypted fields need SECRET_KEY and at least one FIELD_ENCRYPTION_KEYS entry."
        )
    return tuple(secrets), tuple(salts)


@functools.lru_cache(maxsize=16)
def _derived_keys(secrets: tuple[str, ...], salts: tuple[str, ...]) -> tuple[bytes, ...]:
    """The library's keys, in its order: for each secret key, for each salt. The first one
    (SECRET_KEY with the first FIELD_ENCRYPTION_KEYS entry) encrypts."""
    keys = []
    for secret in secrets:
        for salt in salts:
            kdf = PBKDF2HMAC(
                algorithm=hashes.SHA256(),
                length=_KDF_LENGTH,
                salt=salt.encode("utf-8"),
                iterations=_KDF_ITERATIONS,
            )
            keys.append(base64.urlsafe_b64encode(kdf.derive(secret.encode("utf-8"))))
    return tuple(keys)


@functools.lru_cache(maxsize=16)
def _multi_fernet(keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


@functools.lru_cache(maxsize=16)
def _fernet(key: bytes) -> Fernet:
    return Fernet(key)


def encryption_keys() -> tuple[bytes, ...]:
    return _derived_keys(*encryption_key_material())


class FailClosedEncryptionMixin:
    """Put before the library's field class (see the module docstring)."""

    @property
    def keys(self) -> list[bytes]:
        return list(encryption_keys())

    @property
    def f(self) -> MultiFernet:
        return _multi_fernet(encryption_keys())

    def _decrypt(self, value: str) -> str:
        try:
            return self.f.decrypt(value.encode("utf-8")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise UndecryptableValueError(
                model_label=self.model.__name__, field_name=self.name
            ) from None

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        # Skip the library's lenient to_python: straight to CharField/TextField's.
        return super(library.EncryptedFieldMixin, self).to_python(self._decrypt(value))


# The last base is already in the library class's MRO (the MRO is unchanged); it is named so
# that the type checker, which cannot see into the untyped library, knows the value types.
class EncryptedCharField(FailClosedEncryptionMixin, library.EncryptedCharField, models.CharField):
    pass


class EncryptedTextField(FailClosedEncryptionMixin, library.EncryptedTextField, models.TextField):
    pass


# --- Key rotation: re-encrypting stored values under the newest key ---------------------------


@dataclass(frozen=True)
class EncryptedColumn:
    model: type[models.Model]
    field: models.Field

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"


@dataclass
class ColumnReport:
    column: EncryptedColumn
    values: int = 0  # non-empty stored values seen
    reencrypted: int = 0  # under an older key: re-encrypted (or, in a dry run, would be)
    undecryptable_pks: list[Any] = dataclass_field(default_factory=list)

    @property
    def current(self) -> int:
        return self.values - self.reencrypted - len(self.undecryptable_pks)


def encrypted_columns() -> list[EncryptedColumn]:
    """Every concrete encrypted column of every installed model (ours or the library's), found
    by field type. The library's JSON field stores one token per JSON leaf, not one token: it
    is not supported (we have none), and `encrypted_column_reencrypt` refuses it."""
    columns = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue  # a proxy shares its concrete model's table; unmanaged ones are not ours
        columns += [
            EncryptedColumn(model, model_field)
            for model_field in model._meta.local_concrete_fields
            if isinstance(model_field, library.EncryptedFieldMixin)
        ]
    return columns


def reencrypted_token(token: str) -> str | None:
    """`token` re-encrypted under the newest key, or None if it already is. Raises
    cryptography's InvalidToken when no configured key decrypts it."""
    keys = encryption_keys()
    try:
        _fernet(keys[0]).decrypt(token.encode("utf-8"))
    except InvalidToken:
        return _multi_fernet(keys).rotate(token.encode("utf-8")).decode("utf-8")
    return None


def encrypted_column_reencrypt(
    *, column: EncryptedColumn, batch_size: int = 500, dry_run: bool = False
) -> ColumnReport:
    """Re-encrypt every stored value of `column` that is not under the newest key.

    Batches in primary-key order (keyset, so each batch is one short transaction and a fleet
    of rows is never held in memory): one SELECT ... FOR UPDATE and at most one UPDATE per
    batch. The stored tokens are read and written as raw text (a Cast, and Values typed as
    TextField), not through the field, which would decrypt on read and encrypt again on write.
    Rows no key decrypts are left as they are and reported by primary key. Idempotent: a
    second run finds every value current and writes nothing.
    """
    if isinstance(column.field, library.EncryptedJSONField):
        raise ImproperlyConfigured(f"{column.label}: encrypted JSON fields are not supported.")
    report = ColumnReport(column)
    manager = column.model._base_manager
    attname = column.field.attname
    last_pk = None
    while True:
        with transaction.atomic():
            batch = manager.filter(**{f"{attname}__isnull": False})
            if last_pk is not None:
                batch = batch.filter(pk__gt=last_pk)
            rows = list(
                batch.order_by("pk")
                .select_for_update()
                .annotate(stored_token=Cast(attname, models.TextField()))
                .values_list("pk", "stored_token")[:batch_size]
            )
            if not rows:
                return report
            last_pk = rows[-1][0]
            updates = {}
            for pk, token in rows:
                if token == "":
                    continue
                report.values += 1
                try:
                    new_token = reencrypted_token(token)
                except InvalidToken:
                    report.undecryptable_pks.append(pk)
                    continue
                if new_token is not None:
                    updates[pk] = new_token
            report.reencrypted += len(updates)
            if updates and not dry_run:
                manager.filter(pk__in=updates).update(
                    **{
                        attname: Case(
                            *(
                                When(pk=pk, then=Value(token, output_field=models.TextField()))
                                for pk, token in updates.items()
                            ),
                            default=F(attname),
                            output_field=models.TextField(),
                        )
                    }
                )
