"""The reference pages in docs/reference/ name everything the code defines.

Names are collected from the code itself, so a setting, system check, signal, command,
template tag or error code added without its line in the reference fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from django_callauth.conf import declared_settings
from django_callauth.errors import ErrorCode
from django_callauth.models import ALLOWED_TRANSITIONS
from django_callauth.providers import known_provider_classes
from django_callauth.templatetags.callauth import register

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_callauth"
REFERENCE = ROOT / "docs" / "reference"


def code_of(*paths: Path) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in paths)


def settings_names() -> set[str]:
    # Each setting is declared once, as a Setting (conf.py, each provider's ``settings``);
    # a setting still read with _get("NAME", ...) or get_setting("NAME", ...) counts too.
    found = re.findall(r'\b(?:_get|get_setting)\("(\w+)"', code_of(*PACKAGE.rglob("*.py")))
    declared = [*declared_settings(), *(s for cls in known_provider_classes() for s in cls.settings)]
    return {f"CALLAUTH_{name}" for name in found} | {setting.setting for setting in declared}


def check_ids() -> set[str]:
    # conf.py holds the ids a wrong setting is reported under (Setting.check_id).
    return set(re.findall(r'"(callauth\.[EW]\d{3})"', code_of(PACKAGE / "checks.py", PACKAGE / "conf.py")))


def signal_names() -> set[str]:
    return set(re.findall(r"^(\w+) = Signal\(\)", code_of(PACKAGE / "signals.py"), re.M))


def command_names() -> set[str]:
    return {p.stem for p in (PACKAGE / "management" / "commands").glob("*.py") if not p.stem.startswith("_")}


def error_codes() -> set[str]:
    return {code.value for code in ErrorCode}


def missing(names: set[str], page: str) -> set[str]:
    text = (REFERENCE / page).read_text(encoding="utf-8")
    return {name for name in names if not re.search(rf"``{re.escape(name)}``|{{% {re.escape(name)}\b", text)}


@pytest.mark.parametrize(
    ("names", "page"),
    [
        (settings_names, "settings.rst"),
        (check_ids, "checks.rst"),
        (signal_names, "signals.rst"),
        (command_names, "commands.rst"),
        (lambda: set(register.tags), "templatetags.rst"),
        (error_codes, "json-api.rst"),
    ],
    ids=["settings", "checks", "signals", "commands", "templatetags", "error-codes"],
)
def test_reference_names_everything(names, page):
    found = names()
    assert found, f"collected no names for {page}"
    assert missing(found, page) == set(), f"missing from docs/reference/{page}"


def test_the_error_table_gives_each_code_its_status():
    text = (REFERENCE / "json-api.rst").read_text(encoding="utf-8")
    documented = {code: int(status) for code, status in re.findall(r"^``(\w+)``\s+(\d{3})\s", text, re.M)}
    assert documented == {code.value: int(code.status) for code in ErrorCode}


def test_the_documented_state_changes_are_the_allowed_transitions():
    text = (ROOT / "docs" / "how-it-works.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"^``(\w+)``\s+``(\w+)``\s", text, re.M))
    assert documented == {(source.value, target.value) for source, target in ALLOWED_TRANSITIONS}


def test_every_test_the_docs_cite_exists():
    pages = [ROOT / "README.rst", *(ROOT / "docs").rglob("*.rst")]
    cited = {m for page in pages for m in re.findall(r"tests/test_\w+\.py(?:::\w+)*", page.read_text(encoding="utf-8"))}
    assert cited, "the docs cite no test"
    for citation in cited:
        path, *names = citation.split("::")
        assert (ROOT / path).is_file(), f"{citation}: no such file"
        source = (ROOT / path).read_text(encoding="utf-8")
        for name in names:
            assert re.search(rf"^\s*(?:class|def) {name}\b", source, re.M), f"{citation}: no {name} in {path}"


def test_the_collectors_see_what_is_known():
    assert {"CALLAUTH_PROVIDER", "CALLAUTH_TELEFON_IP_TOKEN", "CALLAUTH_SMS_RU_CALLBACK"} <= settings_names()
    assert {"callauth.E001", "callauth.E012", "callauth.E013", "callauth.W004"} <= check_ids()
    assert {"logged_in", "rate_limited"} <= signal_names()
    assert {"callauth_cleanup", "callauth_simulate_call"} <= command_names()
    assert {"callauth_login_form", "callauth_css"} <= set(register.tags)


def test_a_missing_name_fails():
    assert missing({"CALLAUTH_NO_SUCH_SETTING"}, "settings.rst") == {"CALLAUTH_NO_SUCH_SETTING"}


def test_docs_point_at_nothing_outside_the_repository():
    pages = [ROOT / "README.rst", *(ROOT / "docs").rglob("*.rst"), *(ROOT / "docs").glob("*.py")]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for outside in ("../shared", "SECURITY.md", "PROVIDER.md"):
            assert outside not in text, f"{page.relative_to(ROOT)} mentions {outside}"
