"""The Russian translation: pages and JSON errors come in Russian, and the catalogs are complete.

Every request runs inside ``translation.override("ru")``: LocaleMiddleware activates the
request's language for the thread and never deactivates it, and ``override`` puts the
previous language back so no other test sees Russian.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import example
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import translation

import django_callauth
from django_callauth.web.parts import seconds_left_text
from tests.helpers import TYPED_PHONE

APP_PO = Path(django_callauth.__file__).resolve().parent / "locale" / "ru" / "LC_MESSAGES" / "django.po"
EXAMPLE_PO = Path(example.__file__).resolve().parent / "locale" / "ru" / "LC_MESSAGES" / "django.po"
CATALOGS = [pytest.param(APP_PO, id="django_callauth"), pytest.param(EXAMPLE_PO, id="example")]


# -- pages and messages --------------------------------------------------------


@pytest.fixture
def ru_client():
    with translation.override("ru"):
        yield Client(HTTP_ACCEPT_LANGUAGE="ru")


@pytest.mark.django_db
def test_login_page_is_russian(ru_client):
    response = ru_client.get("/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ru">' in html
    assert "<h1>Вход</h1>" in html  # the site's own word, not the admin's "Войти"
    assert "Номер мобильного телефона" in html
    assert '<button type="submit" class="callauth-button">Войти по звонку</button>' in html
    assert "Вы позвоните с этого телефона на номер, который мы покажем. Звонок бесплатный — он сразу сбросится." in html


@pytest.mark.django_db
def test_sandbox_challenge_page_is_russian(ru_client):
    response = ru_client.post("/callauth/start/", {"phone": TYPED_PHONE})
    assert response.status_code == 302
    response = ru_client.get("/callauth/challenge/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Позвоните, чтобы войти</title>" in html
    assert '<h1 class="callauth-title">Позвоните, чтобы войти</h1>' in html
    assert "Звоните с номера <strong>+7 900 123-45-67</strong>. Звонок сразу сбросится — это бесплатно." in html
    assert re.search(r"<span>Позвонить \+7 999 000-\d\d-\d\d</span>", html)
    assert re.search(r'role="timer">Осталось 1[12]\d секунд[аы]?</span>', html)
    assert 'data-plural-one="Осталась {n} секунда" data-plural-few="Остались {n} секунды"' in html
    assert "Ждём ваш звонок…" in html
    assert "Я позвонил(а) — войти</button>" in html
    assert "<p>Тестовый режим: настоящего звонка не будет.</p>" in html
    assert 'id="callauth-sandbox-call">Имитировать звонок</button>' in html
    assert "Наведите камеру телефона, чтобы позвонить" in html
    assert "Скопировать номер" in html


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "Осталась 1 секунда"), (2, "Остались 2 секунды"), (5, "Осталось 5 секунд"), (21, "Осталась 21 секунда")],
)
def test_seconds_left_takes_each_russian_plural_form(seconds: int, text: str) -> None:
    with translation.override("ru"):
        assert seconds_left_text(seconds) == text


@pytest.mark.django_db
def test_invalid_phone_json_error_is_russian(ru_client):
    response = ru_client.post("/callauth/start/", {"phone": "abc"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_phone",
        "message": "Введите российский мобильный номер, например +7 900 123-45-67.",
    }


@pytest.mark.django_db
def test_invalid_phone_form_error_is_russian(ru_client):
    response = ru_client.post("/callauth/start/", {"phone": "+7 800 123-45-67"})
    assert response.status_code == 400
    assert "Войти по звонку можно только с российского мобильного номера (+7 9XX …)." in response.content.decode()


@pytest.mark.django_db
def test_lazy_view_message_is_russian(ru_client):
    ru_client.post("/callauth/start/", {"phone": TYPED_PHONE})
    response = ru_client.post("/callauth/complete/", HTTP_ACCEPT="application/json")
    assert response.status_code == 409
    assert (
        response.json()["message"] == "Мы ещё не получили ваш звонок. Позвоните на указанный номер и попробуйте снова."
    )


@pytest.mark.django_db
def test_english_stays_the_default(client):
    """Without Accept-Language the test settings' English is served, and nothing leaks."""
    assert translation.get_language() in ("en", "en-us")
    html = client.get("/login/").content.decode()
    assert '<html lang="en">' in html
    assert "Log in by phone call" in html


@pytest.mark.django_db
@pytest.mark.parametrize(("asks", "lang"), [("de-DE,de;q=0.9", "ru"), ("en-US,en;q=0.9", "en"), ("ru", "ru")])
def test_the_example_follows_the_browser_russian_when_it_asks_for_neither(settings, asks, lang):
    settings.LANGUAGE_CODE = "ru"  # the example site's default (the tests' own is English)
    html = Client(HTTP_ACCEPT_LANGUAGE=asks).get("/login/").content.decode()
    assert f'<html lang="{lang}">' in html
    assert ("<h1>Вход</h1>" in html) == (lang == "ru")


# -- the catalogs --------------------------------------------------------------


def _po_string(lines: list[str]) -> str:
    """The value of a msgid/msgstr made of one or more quoted lines."""
    return "".join(ast.literal_eval(line.split(" ", 1)[1] if line.startswith("msg") else line) for line in lines)


def parse_po(path: Path) -> list[dict]:
    """Entries of a .po file: msgid, msgstr (plural forms joined by NUL), flags, obsolete."""
    entries = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip()):
        lines = block.splitlines()
        entry: dict = {"flags": set(), "msgid": None, "msgstr": [], "obsolete": False, "msgctxt": None}
        current = None
        parts: dict[str, list[str]] = {}
        for line in lines:
            if line.startswith("#~"):
                entry["obsolete"] = True
                continue
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
                continue
            if line.startswith("#"):
                continue
            if line.startswith('"'):
                parts[current].append(line)
                continue
            keyword = line.split(" ", 1)[0]
            current = keyword
            parts[current] = [line]
        for key, value in parts.items():
            if key == "msgid":
                entry["msgid"] = _po_string(value)
            elif key == "msgctxt":
                entry["msgctxt"] = _po_string(value)
            elif key == "msgid_plural":
                entry["msgid_plural"] = _po_string(value)
            elif key.startswith("msgstr"):
                entry["msgstr"].append(_po_string(value))
        entries.append(entry)
    return entries


def messages(path: Path) -> list[dict]:
    """All entries except the header (msgid "")."""
    return [e for e in parse_po(path) if e["msgid"] or e["obsolete"]]


@pytest.mark.parametrize("po", CATALOGS)
def test_po_header(po):
    header = next(e for e in parse_po(po) if e["msgid"] == "")
    assert "fuzzy" not in header["flags"]
    assert "Language: ru\n" in header["msgstr"][0]
    assert "charset=UTF-8" in header["msgstr"][0]


@pytest.mark.parametrize("po", CATALOGS)
def test_po_is_complete(po):
    assert "#, fuzzy" not in po.read_text(encoding="utf-8")
    entries = messages(po)
    assert entries, f"{po} has no messages"
    assert not [e["msgid"] for e in entries if e["obsolete"]], "obsolete entries: run makemessages --no-obsolete"
    untranslated = [e["msgid"] for e in entries if not e["msgstr"] or not all(e["msgstr"])]
    assert untranslated == []


@pytest.mark.parametrize("po", CATALOGS)
def test_placeholders_are_kept(po):
    placeholder = re.compile(r"%\(\w+\)[sd]|\{\{\s*\w+\s*\}\}|</?\w+>")
    for entry in messages(po):
        for msgstr in entry["msgstr"]:
            assert sorted(placeholder.findall(msgstr)) == sorted(placeholder.findall(entry["msgid"])), entry["msgid"]


@pytest.mark.parametrize("po", CATALOGS)
def test_compiled_catalog_matches_po(po):
    """Every translation in the .po is what gettext answers: the .mo is compiled and current."""
    assert po.with_suffix(".mo").is_file(), "run django-admin compilemessages"
    stale = {}
    with translation.override("ru"):
        for entry in messages(po):
            msgid, msgstr = entry["msgid"], entry["msgstr"][0]
            if "msgid_plural" in entry:
                got = translation.ngettext(msgid, entry["msgid_plural"], 1)
            elif entry["msgctxt"] is not None:
                got = translation.pgettext(entry["msgctxt"], msgid)
            else:
                got = translation.gettext(msgid)
            if got != msgstr:
                stale[msgid] = (got, msgstr)
    assert stale == {}


def msgids(path: Path) -> set[tuple[str | None, str, str | None]]:
    """(context, msgid, plural msgid) of every message a catalog translates."""
    return {(e["msgctxt"], e["msgid"], e.get("msgid_plural")) for e in messages(path) if not e["obsolete"]}


@pytest.mark.parametrize("po", CATALOGS)
def test_catalog_is_current_with_the_source(po, tmp_path, monkeypatch):
    """``makemessages`` run on a copy of the source would add or drop no message.

    A string added to a template or module and not to the catalog (or one left behind)
    fails here; regenerate as docs/howto/development.rst says, translate, and compile.
    """
    if shutil.which("xgettext") is None:
        pytest.fail("needs GNU gettext (Debian: apt-get install gettext) to run makemessages")
    source = po.parents[3]  # <app>/locale/ru/LC_MESSAGES/django.po
    copy = tmp_path / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["ru"], no_obsolete=True, verbosity=0)
    regenerated = copy / po.relative_to(source)
    assert msgids(regenerated) - msgids(po) == set(), "messages missing from the catalog"
    assert msgids(po) - msgids(regenerated) == set(), "messages no longer in the source"
