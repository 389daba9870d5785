"""Internationalisation: the catalogues are complete, and the language follows the profile,
the switcher or the browser (notifications.i18n)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.utils import translation
from django.utils.translation import trans_real

from notifications.models import CustomerProfile
from notifications.services import customer_profile_upsert

ROOT = Path(settings.BASE_DIR)
LOCALE = ROOT / "locale"
LANGUAGES = [code for code, _name in settings.LANGUAGES]
# What makemessages must not read: environments, caches, build output, the catalogues.
SKIP = {".venv", "var", ".git", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdifr]|%[sdif]|%%")


@pytest.fixture(scope="module", autouse=True)
def _compiled_catalogues():
    """The .mo files (`make install` builds them; built here when missing or older)."""
    for po in LOCALE.glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            call_command("compilemessages", locale=LANGUAGES, ignore_patterns=list(SKIP))
            trans_real._translations = {}
            trans_real._default = None
            break


def _placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def _translations(entry: polib.POEntry) -> list[str]:
    return list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]


# --- (a) the catalogues -----------------------------------------------------------------


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """makemessages run on a copy of the tree (so the project's catalogues stay as they are):
    every string the code marks now, merged with the translations the copy's catalogues hold."""
    copy = tmp_path_factory.mktemp("i18n") / "tree"

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP or n == "__pycache__" or n.endswith(".mo")}

    shutil.copytree(ROOT, copy, ignore=ignore)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "--no-obsolete", "--no-location"]
        + [f"--locale={code}" for code in LANGUAGES]
        + [f"--ignore={name}" for name in sorted(SKIP)],
        cwd=copy,
        check=True,
        capture_output=True,
        env={**_env(), "DATABASE_URL": "sqlite:///:memory:"},
    )
    return copy / "locale"


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_every_marked_string_is_in_the_catalogues(extracted):
    for code in LANGUAGES:
        fresh = {
            (e.msgctxt, e.msgid)
            for e in polib.pofile(extracted / code / "LC_MESSAGES" / "django.po")
        }
        kept = {
            (e.msgctxt, e.msgid)
            for e in polib.pofile(LOCALE / code / "LC_MESSAGES" / "django.po")
            if not e.obsolete
        }
        assert fresh - kept == set(), f"{code}: run `make messages` and translate the new strings"
        assert kept - fresh == set(), f"{code}: strings no code marks any more (`make messages`)"


def test_indonesian_is_complete_not_fuzzy_and_keeps_the_placeholders(extracted):
    catalogue = polib.pofile(extracted / "id" / "LC_MESSAGES" / "django.po")
    assert len(catalogue) > 100  # the whole site, not a handful
    problems = []
    for entry in catalogue:
        if entry.obsolete:
            continue
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {entry.msgid!r}")
            continue
        for text in _translations(entry):
            if not text.strip():
                problems.append(f"untranslated: {entry.msgid!r}")
            elif _placeholders(text) != _placeholders(entry.msgid):
                problems.append(f"placeholders differ: {entry.msgid!r} -> {text!r}")
    assert problems == []


def test_placeholders_check_catches_a_broken_translation():
    entry = polib.POEntry(msgid="Invoice %(number)s is %(status)s.", msgstr="Tagihan %(nomor)s")
    assert _placeholders(entry.msgstr) != _placeholders(entry.msgid)


def test_the_catalogues_compile_and_translate():
    with translation.override("id"):
        assert translation.gettext("Account credit") == "Kredit akun"
        assert translation.gettext("Invoice %(number)s") % {"number": "INV-1"} == "Tagihan INV-1"
    with translation.override("en"):
        assert translation.gettext("Account credit") == "Account credit"


# --- (b) pages in the customer's or the browser's language -------------------------------


def _indonesian(customer):
    customer_profile_upsert(user=customer, preferred_language="id")
    return customer


@pytest.mark.django_db
def test_anonymous_pages_follow_accept_language(client, catalog):
    indonesian = client.get("/", HTTP_ACCEPT_LANGUAGE="id-ID,id;q=0.9,en;q=0.5")
    assert indonesian.status_code == 200
    assert indonesian["Content-Language"] == "id"
    html = indonesian.content.decode()
    assert '<html lang="id">' in html
    assert ">Paket</a>" in html
    assert ">Masuk</a>" in html
    assert "Butuh bantuan?" in html

    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert english["Content-Language"] == "en"
    assert ">Plans</a>" in english.content.decode()

    default = client.get("/")
    assert default["Content-Language"] == "en"
    assert ">Log in</a>" in default.content.decode()


@pytest.mark.django_db
def test_a_signed_in_customer_sees_the_profile_language_whatever_the_browser(client, customer):
    client.force_login(_indonesian(customer))
    response = client.get("/accounts/credit/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response["Content-Language"] == "id"
    html = response.content.decode()
    assert "<h1>Kredit akun</h1>" in html
    assert "Anda tidak memiliki kredit akun." in html
    assert ">Dasbor</a>" in html
    assert ">Keluar</button>" in html
    assert "Account credit" not in html


@pytest.mark.django_db
def test_an_english_profile_wins_over_an_indonesian_browser(client, customer):
    customer_profile_upsert(user=customer, preferred_language="en")
    client.force_login(customer)
    response = client.get("/accounts/payment-methods/", HTTP_ACCEPT_LANGUAGE="id")
    assert response["Content-Language"] == "en"
    assert "<h1>Saved cards</h1>" in response.content.decode()


@pytest.mark.django_db
def test_a_views_message_is_shown_in_the_profile_language(client, customer):
    client.force_login(_indonesian(customer))
    response = client.get("/accounts/payment-methods/?setup=cancelled", follow=True)
    assert response.redirect_chain == [("/accounts/payment-methods/", 302)]
    assert "Tidak ada kartu yang ditambahkan." in response.content.decode()


@pytest.mark.django_db
def test_the_api_follows_accept_language_not_the_profile(client, customer):
    client.force_login(_indonesian(customer))
    response = client.get("/api/v1/orders/", HTTP_ACCEPT_LANGUAGE="en")
    assert response["Content-Language"] == "en"


# --- (c) the switcher --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_switcher_sets_the_cookie_for_an_anonymous_visitor(client, catalog):
    response = client.post("/i18n/setlang/", {"language": "id", "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "id"
    assert not CustomerProfile.objects.exists()
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert page["Content-Language"] == "id"
    assert 'value="id" class="link" lang="id" aria-current="true" disabled' in page.content.decode()


@pytest.mark.django_db
def test_the_switcher_saves_the_profile_of_a_signed_in_customer(client, customer):
    customer_profile_upsert(user=customer, whatsapp_number="+6281234567890", whatsapp_consent=True)
    client.force_login(customer)
    response = client.post("/i18n/setlang/", {"language": "id", "next": "/dashboard/"})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    profile = CustomerProfile.objects.get(user=customer)
    assert profile.preferred_language == "id"
    # Nothing else on the profile changed.
    assert (profile.whatsapp_number, profile.whatsapp_consent) == ("+6281234567890", True)
    # Another browser (no cookie) of the same customer: Indonesian too, from the profile.
    client.cookies.clear()
    client.force_login(customer)
    assert client.get("/accounts/credit/")["Content-Language"] == "id"


@pytest.mark.django_db
def test_the_switcher_refuses_an_unknown_language_and_changes_nothing(client, customer):
    customer_profile_upsert(user=customer, preferred_language="en")
    client.force_login(customer)
    response = client.post("/i18n/setlang/", {"language": "xx", "next": "/dashboard/"})
    assert response.status_code == 302
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert CustomerProfile.objects.get(user=customer).preferred_language == "en"


@pytest.mark.django_db
def test_the_switcher_takes_only_post(client):
    assert client.get("/i18n/setlang/?language=id").status_code == 405


# --- (d) mail in the account's language --------------------------------------------------


@pytest.mark.django_db
def test_the_password_reset_mail_speaks_the_accounts_language(client, customer, other_customer):
    _indonesian(customer)
    customer_profile_upsert(user=other_customer, preferred_language="en")
    # Asked from an English page: each mail is in its account's language.
    for user in (customer, other_customer):
        response = client.post(
            "/accounts/password-reset/", {"email": user.email}, HTTP_ACCEPT_LANGUAGE="en"
        )
        assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [[customer.email], [other_customer.email]]
    assert mail.outbox[0].subject.startswith("Penyetelan ulang sandi di ")
    assert mail.outbox[1].subject.startswith("Password reset on ")
    assert "/accounts/reset/" in mail.outbox[0].body


@pytest.mark.django_db
def test_the_password_reset_mail_without_a_profile_speaks_the_pages_language(client, customer):
    CustomerProfile.objects.filter(user=customer).delete()
    client.post("/accounts/password-reset/", {"email": customer.email}, HTTP_ACCEPT_LANGUAGE="id")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject.startswith("Penyetelan ulang sandi di ")
