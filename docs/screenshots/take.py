"""Screenshots of every page and state, on a phone and a desktop, in Russian and English, light and dark.

Run by hand, not in CI, from the repository's root, with the test extra installed and
Debian's chromium on PATH::

    .venv/bin/python docs/screenshots/take.py            # everything
    .venv/bin/python docs/screenshots/take.py waiting    # the states named

It serves the example site on loopback (sandbox provider) and writes
``docs/screenshots/<lang>-<device>-<scheme>-<state>.png``, squeezed by ``pngquant``
when it is on PATH. The screen's own size is what is shot, not the whole page: a page
that does not fit shows as cut.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "example_project")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from playwright.sync_api import BrowserContext, Page, expect, sync_playwright  # noqa: E402

from tests.helpers import (  # noqa: E402
    DESKTOP_SCREEN,
    OTHER_PHONE,
    PHONE_SCREEN,
    SANDBOX_CALL,
    api_post,
    example_site_server,
    open_challenge,
)

OUT = Path(__file__).resolve().parent
DEVICES = {"phone": PHONE_SCREEN, "desktop": DESKTOP_SCREEN}
LOCALES = {"ru": "ru-RU", "en": "en-US"}
SCHEMES = ("light", "dark")
start = open_challenge


def ended(page: Page) -> None:
    page.wait_for_selector("[data-state=ended]", timeout=15_000)


# Each state: how to reach it from a fresh context, on the default site or the short-lived one.
def login(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    page.goto(sites["main"] + "/login/")


def login_error(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    page.goto(sites["main"] + "/login/")
    page.fill("#callauth-phone", "+7 800 123-45-6")
    page.click("form.callauth-form button[type=submit]")
    page.wait_for_selector("#callauth-phone-error")


def no_login_in_progress(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    page.goto(sites["main"] + "/callauth/challenge/")  # the app's own login page, saying why


def error_page(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    page.goto(sites["main"] + "/callauth/start/")  # a GET: the app's error page


def waiting(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    start(page, sites["main"])
    page.wait_for_timeout(1200)  # a second of the countdown gone


def logging_in(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    start(page, sites["main"])
    page.route("**/callauth/complete/", lambda route: None)  # held: the page stays on "Logging you in…"
    page.click("#callauth-sandbox-call")
    page.wait_for_selector("[data-state=confirmed]")


def call_received_without_javascript(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    start(page, sites["main"])
    page.click("#callauth-sandbox-call")
    page.wait_for_selector("[data-state=confirmed]")


def time_up(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    start(page, sites["short"])
    ended(page)


def another_phone(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    start(page, sites["main"])
    api_post(context, sites["main"], SANDBOX_CALL, caller=OTHER_PHONE)
    ended(page)


def no_account(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    start(page, sites["short"], "+7 900 555-00-11")
    page.click("#callauth-sandbox-call")
    ended(page)


def home(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    start(page, sites["main"])
    page.click("#callauth-sandbox-call")
    page.wait_for_url(sites["main"] + "/")


def phones(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    home(page, context, sites)  # logged in by a call: that phone is listed
    page.goto(sites["main"] + "/callauth/phones/")


def adding_a_phone(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    phones(page, context, sites)
    page.fill("#callauth-phone", "+7 900 765-43-21")
    page.click("form[action$='/phones/add/'] button[type=submit]")
    page.wait_for_selector("[data-state=waiting]")


def phone_added(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    adding_a_phone(page, context, sites)
    page.click("#callauth-sandbox-call")
    page.wait_for_url(sites["main"] + "/callauth/phones/")


def phone_not_allowed(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    # On the site whose adapter lets nobody add a phone: refused once the call is confirmed.
    start(page, sites["nolink"])
    page.click("#callauth-sandbox-call")
    page.wait_for_url(sites["nolink"] + "/")
    page.goto(sites["nolink"] + "/callauth/phones/")
    page.fill("#callauth-phone", "+7 900 765-43-21")
    page.click("form[action$='/phones/add/'] button[type=submit]")
    page.wait_for_selector("[data-state=waiting]")
    page.click("#callauth-sandbox-call")
    ended(page)


def log_in_again(page: Page, context: BrowserContext, sites: dict[str, str]) -> None:
    # On the site whose logins count as recent for one second: adding or removing a phone asks for a new login.
    start(page, sites["reauth"])
    page.click("#callauth-sandbox-call")
    page.wait_for_url(sites["reauth"] + "/")
    page.wait_for_timeout(1500)
    page.goto(sites["reauth"] + "/callauth/phones/")


State = Callable[[Page, BrowserContext, dict[str, str]], None]
STATES: dict[str, tuple[State, bool]] = {  # name: (how to reach it, with JavaScript)
    "login": (login, True),
    "login-error": (login_error, True),
    "no-login-in-progress": (no_login_in_progress, True),
    "error": (error_page, True),
    "waiting": (waiting, True),
    "logging-in": (logging_in, True),
    "call-received-no-js": (call_received_without_javascript, False),
    "time-up": (time_up, True),
    "another-phone": (another_phone, True),
    "no-account": (no_account, True),
    "home": (home, True),
    "phones": (phones, True),
    "adding-a-phone": (adding_a_phone, True),
    "phone-added": (phone_added, True),
    "phone-not-allowed": (phone_not_allowed, True),
    "log-in-again": (log_in_again, True),
}


def shots(names: list[str]) -> Iterator[tuple[str, str, str, str]]:
    for name in names:
        for lang in LOCALES:
            for device in DEVICES:
                for scheme in SCHEMES:
                    yield name, lang, device, scheme


def main(names: list[str]) -> None:
    squeeze = shutil.which("pngquant")
    with ExitStack() as stack, sync_playwright() as playwright:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (folder / "main").mkdir()
        (folder / "short").mkdir()
        (folder / "nolink").mkdir()
        (folder / "reauth").mkdir()
        sites = {
            "main": stack.enter_context(example_site_server(folder / "main")),
            # Numbers live 4 seconds, and a new phone gets no account.
            "short": stack.enter_context(
                example_site_server(folder / "short", CALLAUTH_TTL="4", CALLAUTH_SIGNUP="false")
            ),
            # The adapter refuses every phone to add (tests/test_linking.py's, importable from the root).
            "nolink": stack.enter_context(
                example_site_server(
                    folder / "nolink", CALLAUTH_ADAPTER="tests.test_linking.NoLinkingAdapter", PYTHONPATH=str(ROOT)
                )
            ),
            # A login counts as recent for one second only: the phones page asks to log in again.
            "reauth": stack.enter_context(
                example_site_server(folder / "reauth", CALLAUTH_REAUTHENTICATION_TIMEOUT="1")
            ),
        }
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        for name, lang, device, scheme in shots(names):
            reach, javascript = STATES[name]
            context = browser.new_context(
                locale=LOCALES[lang], color_scheme=scheme, java_script_enabled=javascript, **DEVICES[device]
            )
            page = context.new_page()
            reach(page, context, sites)
            expect(page.locator("body")).to_be_visible()
            path = OUT / f"{lang}-{device}-{scheme}-{name}.png"
            page.screenshot(path=str(path), animations="disabled", caret="hide")
            context.close()
            if squeeze:
                subprocess.run([squeeze, "--force", "--skip-if-larger", "--output", str(path), "--", str(path)])
            print(f"{path.name}: {path.stat().st_size // 1024} KB")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1:] or list(STATES))
