"""The pages as a person meets them, in headless Chromium on the example site.

A phone and a desktop, Russian and English, the light and the dark scheme, the keyboard
alone, a strict Content-Security-Policy, and axe-core (bundled by axe-playwright-python,
nothing downloaded) on every page and state. The login itself, and the race of a press
with the page's own login, are in test_browser.py.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from django.template import Context, Template
from django.utils import translation

from django_callauth.phones import format_phone, normalize_phone
from tests.helpers import (
    CHALLENGE,
    DESKTOP_SCREEN,
    OTHER_PHONE,
    PHONE,
    PHONE_SCREEN,
    SANDBOX_CALL,
    TYPED_PHONE,
    api_post,
    open_challenge,
)

try:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect
except ImportError:  # the tests are skipped (or fail under CALLAUTH_REQUIRE_BROWSER), see conftest
    pass

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Route

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]
CALL_BUTTON = "a.callauth-call"
SIMULATE_THE_CALL = "#callauth-sandbox-call"
STATE = "#callauth-challenge"
CSP = "default-src 'self'; img-src 'self' data:"
PHONES = "/callauth/phones/"
HTML = "text/html; charset=utf-8"
ACCENT = "rgb(31, 79, 209)"  # --callauth-accent's default, light scheme


@pytest.fixture(scope="module")
def short_lived_site(example_sites: Callable[..., str]) -> str:
    """The example site where a number lives 4 seconds and a new phone gets no account."""
    return example_sites(CALLAUTH_TTL="4", CALLAUTH_SIGNUP="false")


def lines(page: Page, selector: str) -> int:
    """How many lines the text of the first ``selector`` takes on the screen."""
    return page.eval_on_selector(
        selector,
        """element => {
            const range = document.createRange();
            range.selectNodeContents(element);
            return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
        }""",
    )


def scrolls(page: Page) -> dict[str, bool]:
    return page.evaluate(
        """() => ({
            sideways: document.documentElement.scrollWidth > window.innerWidth,
            down: document.documentElement.scrollHeight > window.innerHeight,
        })"""
    )


def heading(page: Page) -> Any:
    return page.get_by_role("heading", level=1)


def hold_the_login(page: Page) -> list[Route]:
    """Hold every "complete" the page sends, so the page stays on its "Logging you in…" look."""
    held: list[Route] = []
    page.route("**/callauth/complete/", lambda route: held.append(route))
    return held


# -- a phone, a desktop ----------------------------------------------------------------------


@pytest.mark.parametrize("locale, call", [("ru-RU", "Позвонить"), ("en-US", "Call")])
def test_on_a_phone_the_number_is_one_unbroken_button(
    example_site: str, new_context: NewContext, locale: str, call: str
) -> None:
    page = new_context(locale=locale, **PHONE_SCREEN).new_page()
    open_challenge(page, example_site)
    button = page.locator(CALL_BUTTON)
    expect(button).to_be_visible()
    expect(button).to_have_attribute("href", re.compile(r"^tel:\+7999000\d{4}$"))
    expect(button).to_have_text(re.compile(rf"^{call} \+7 999 000-\d\d-\d\d$"))
    assert lines(page, f"{CALL_BUTTON} span") == 1, "the number to call wraps"
    assert lines(page, "h1") == 1, "the heading wraps"
    expect(page.locator(".callauth-qr")).to_be_hidden()  # this phone cannot scan itself
    assert button.evaluate("element => getComputedStyle(element).backgroundColor") == ACCENT
    assert not scrolls(page)["sideways"]


def test_on_a_desktop_the_qr_code_leads_and_the_page_fits_the_screen(
    example_site: str, new_context: NewContext
) -> None:
    context = new_context(**DESKTOP_SCREEN)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=example_site)
    page = context.new_page()
    open_challenge(page, example_site)
    qr = page.locator("img.callauth-qr")
    expect(qr).to_be_visible()
    assert qr.evaluate("image => image.complete && image.naturalWidth > 0")
    assert qr.bounding_box()["width"] >= 180
    expect(page.locator("figcaption")).to_have_text("Scan with your phone's camera to call")
    expect(page.locator(CALL_BUTTON)).to_be_hidden()
    digits = page.locator(".callauth-number-digits")
    expect(digits).to_have_text(re.compile(r"^\+7 999 000-\d\d-\d\d$"))
    assert lines(page, ".callauth-number-digits") == 1
    assert scrolls(page) == {"sideways": False, "down": False}
    page.click(".callauth-copy")
    expect(page.locator("[data-callauth-copied]")).to_have_text("Number copied")
    e164 = "+7" + re.sub(r"\D", "", digits.text_content())[1:]
    assert page.evaluate("navigator.clipboard.readText()") == e164


def test_the_dark_scheme(example_site: str, new_context: NewContext) -> None:
    page = new_context(color_scheme="dark", **PHONE_SCREEN).new_page()
    open_challenge(page, example_site)
    colours = page.eval_on_selector(
        ".callauth-card", "card => [getComputedStyle(card).backgroundColor, getComputedStyle(card).color]"
    )
    assert colours == ["rgb(23, 28, 36)", "rgb(232, 236, 242)"]
    # A QR code stays dark on light, to be read.
    assert page.eval_on_selector(".callauth-qr", "qr => getComputedStyle(qr).backgroundColor") == "rgb(255, 255, 255)"


# -- every state has its own look ---------------------------------------------------------------


def test_once_the_call_is_received_the_page_says_logging_in_and_the_number_is_gone(
    example_site: str, new_context: NewContext
) -> None:
    page = new_context(**PHONE_SCREEN).new_page()
    open_challenge(page, example_site)
    held = hold_the_login(page)
    page.click(SIMULATE_THE_CALL)
    expect(page.locator(STATE)).to_have_attribute("data-state", "confirmed")
    expect(heading(page)).to_have_text("Call received")
    expect(page.locator("#callauth-status")).to_have_text("Logging you in…")
    for gone in (CALL_BUTTON, ".callauth-qr", ".callauth-countdown-text", SIMULATE_THE_CALL, "#callauth-complete"):
        expect(page.locator(gone)).to_be_hidden()
    expect(page.locator("text=Call to log in")).to_be_hidden()
    page.wait_for_timeout(100)
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_url(example_site + "/")


def test_time_up_then_one_button_gives_a_new_number_for_the_same_phone(
    short_lived_site: str, new_context: NewContext
) -> None:
    page = new_context(locale="ru-RU", **PHONE_SCREEN).new_page()
    open_challenge(page, short_lived_site)
    expect(page.locator(STATE)).to_have_attribute("data-state", "ended", timeout=10_000)
    expect(heading(page)).to_have_text("Время вышло")
    expect(page.locator(CALL_BUTTON)).to_have_count(0)
    expect(page.get_by_role("button")).to_have_text(["Получить новый номер"])  # the one button
    with page.expect_navigation():
        page.click("#callauth-restart")
    expect(page.locator(STATE)).to_have_attribute("data-state", "waiting")
    expect(page.locator(".callauth-lead strong")).to_have_text(TYPED_PHONE)


def test_a_confirmed_phone_without_an_account_says_so(short_lived_site: str, new_context: NewContext) -> None:
    page = new_context().new_page()
    open_challenge(page, short_lived_site, "+7 900 555-00-11")
    page.click(SIMULATE_THE_CALL)
    expect(page.locator(STATE)).to_have_attribute("data-state", "ended")
    expect(page.locator(".callauth-reason")).to_have_text("There is no account with this phone number.")
    expect(page.locator("#callauth-restart")).to_have_count(0)  # the same phone would be refused again


# -- the countdown pluralises in the page's language ---------------------------------------------------

COUNTS = [0, 1, 2, 4, 5, 11, 21, 22, 25, 101, 112]
SAID = {
    "ru": [
        "Осталось 0 секунд",
        "Осталась 1 секунда",
        "Остались 2 секунды",
        "Остались 4 секунды",
        "Осталось 5 секунд",
        "Осталось 11 секунд",
        "Осталась 21 секунда",
        "Остались 22 секунды",
        "Осталось 25 секунд",
        "Осталась 101 секунда",
        "Осталось 112 секунд",
    ],
    "en": ["0 seconds left", "1 second left", *(f"{n} seconds left" for n in COUNTS[2:])],
}


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_script_says_the_seconds_left_with_the_right_plural(
    example_site: str, new_context: NewContext, language: str
) -> None:
    # Countdowns as the tag renders them, their text emptied: what shows is what the script wrote.
    with translation.override(language):
        parts = Template("{% load callauth %}{% for n in counts %}{% callauth_countdown n %}{% endfor %}").render(
            Context({"counts": COUNTS})
        )
    parts = re.sub(r'(role="timer">)[^<]*', r"\1", parts)
    html = f'<!DOCTYPE html><html lang="{language}"><body>{parts}<script src="/static/callauth/challenge.js"></script>'
    page = new_context().new_page()
    page.clock.install(time=0)
    page.clock.pause_at(1000)  # time stands still: the texts stay as the script first wrote them
    page.route(
        example_site + "/countdowns/",
        lambda route: route.fulfill(body=html, content_type=HTML),
    )
    page.goto(example_site + "/countdowns/")
    expect(page.locator(".callauth-countdown-text")).to_have_text(SAID[language])


# -- the phone form on the project's own page ----------------------------------------------------------


def test_the_form_on_the_projects_page_is_styled_and_a_bad_phone_is_said_there(
    example_site: str, new_context: NewContext
) -> None:
    page = new_context(locale="ru-RU", **PHONE_SCREEN).new_page()
    page.goto(example_site + "/login/?next=/")
    submit = page.locator("form.callauth-form button[type=submit]")
    assert submit.evaluate("button => getComputedStyle(button).backgroundColor") == ACCENT
    assert page.locator("link[href$='callauth/callauth.css']").count() == 1
    page.fill("#callauth-phone", "+7 800 555-35-35")
    submit.click()
    page.wait_for_load_state()
    assert page.url == example_site + "/login/?next=/"  # the project's page, not the app's
    expect(heading(page)).to_have_text("Вход")
    expect(page.locator("#callauth-phone-error")).to_have_text(
        "Войти по звонку можно только с российского мобильного номера (+7 9XX …)."
    )
    phone = page.locator("#callauth-phone")
    expect(phone).to_have_value("+7 800 555-35-35")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_be_focused()
    expect(page.locator("input[name=next]")).to_have_value("/")


# -- the keyboard alone --------------------------------------------------------------------------------


def tab_to(page: Page, target: str, most: int = 12) -> list[str]:
    """Press Tab until ``target`` has the focus; what had it on the way, each visibly focused."""
    passed = []
    for _ in range(most):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const element = document.activeElement;
                const style = getComputedStyle(element);
                const seen = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
                return [element.id || element.textContent.trim() || element.name, seen];
            }"""
        )
        name, seen = focused
        assert seen, f"{name!r} has the focus and does not show it"
        passed.append(name)
        if page.locator(target).evaluate("element => element === document.activeElement"):
            return passed
    raise AssertionError(f"Tab never reached {target}: {passed}")


def test_the_whole_login_by_keyboard_alone(example_site: str, new_context: NewContext) -> None:
    page = new_context(**DESKTOP_SCREEN).new_page()
    page.goto(example_site + "/login/")
    assert tab_to(page, "#callauth-phone") == ["Example site", "Home", "Log in", "callauth-phone"]
    page.keyboard.type(TYPED_PHONE)
    assert tab_to(page, "form.callauth-form button") == ["Log in by phone call"]
    page.keyboard.press("Enter")
    page.wait_for_url(example_site + CHALLENGE)
    assert tab_to(page, SIMULATE_THE_CALL) == [
        "Example site",
        "Home",
        "Log in",
        "Copy the number",
        "I have called — log me in",
        "callauth-sandbox-call",
    ]
    page.keyboard.press("Enter")
    page.wait_for_url(example_site + "/")
    expect(page.locator("strong.home-phone")).to_have_text(PHONE)


# -- a strict Content-Security-Policy --------------------------------------------------------------------


def test_under_a_strict_content_security_policy_nothing_is_refused_and_the_login_works(
    example_site: str, new_context: NewContext
) -> None:
    context = new_context(**DESKTOP_SCREEN)

    def with_csp(route: Route) -> None:
        if route.request.resource_type != "document":
            route.continue_()
            return
        response = route.fetch(max_redirects=0)
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})

    context.route("**/*", with_csp)
    page = context.new_page()
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    open_challenge(page, example_site)
    assert page.evaluate("document.querySelector('img.callauth-qr').naturalWidth") > 0  # the data: QR code
    expect(page.locator(".callauth-copy")).to_be_visible()  # the script ran
    assert page.locator(SIMULATE_THE_CALL).evaluate("b => getComputedStyle(b).borderRadius") == "12px"  # the CSS
    page.click(SIMULATE_THE_CALL)
    page.wait_for_url(example_site + "/")
    expect(page.locator("strong.home-phone")).to_have_text(PHONE)
    assert refused == []
    # The policy was in force: an inline style is refused, and said so.
    page.evaluate("document.head.appendChild(document.createElement('style')).textContent = 'body {}'")
    page.wait_for_timeout(100)
    assert refused and all("inline style" in line for line in refused)


# -- a logged-in person's phones ------------------------------------------------------------------------


def unused_phone() -> str:
    """A phone no test used yet on the shared example site, typed as the pages show it."""
    return format_phone("+79" + f"{secrets.randbelow(10**9):09d}")


def add_a_phone(page: Page, typed: str) -> None:
    page.fill("#callauth-phone", typed)
    page.click("form[action$='/phones/add/'] button[type=submit]")
    expect(page.locator(STATE)).to_have_attribute("data-state", "waiting")


def test_a_logged_in_person_adds_a_phone_by_a_call_and_removes_one(example_site: str, new_context: NewContext) -> None:
    first, second = unused_phone(), unused_phone()
    page = new_context(**PHONE_SCREEN).new_page()
    open_challenge(page, example_site, first)
    page.click(SIMULATE_THE_CALL)  # a new account, signed up by this call: no password
    page.wait_for_url(example_site + "/")
    page.click("text=Your phones")
    add_a_phone(page, second)
    expect(heading(page)).to_have_text("Call to add this phone")
    page.click(SIMULATE_THE_CALL)  # the script finishes it, and lands back on the list
    page.wait_for_url(example_site + PHONES)
    expect(page.locator(".callauth-notice")).to_have_text(f"{second} was added to your account.")
    expect(page.locator(".callauth-phone-number")).to_have_text([first, second])
    page.click(f"button[aria-label='Remove {first}']")
    expect(page.locator(".callauth-notice")).to_have_text(f"{first} was removed from your account.")
    page.click(f"button[aria-label='Remove {second}']")  # the last way in of a passwordless account
    expect(page.locator(".callauth-error")).to_contain_text("This is the only way to log in to your account")
    expect(page.locator(".callauth-phone-number")).to_have_text([second])
    page.goto(example_site + "/")
    expect(page.locator(".home-phone")).to_have_text(normalize_phone(second))  # still logged in, the same person


# -- axe-core on every page and state ---------------------------------------------------------------------


def reach_states(page: Page, context: BrowserContext, site: str, short_site: str) -> Iterator[str]:
    """Walk the browser through every page and state; yields each one's name while it shows."""
    page.goto(site + "/login/")
    yield "login (the project's page)"
    page.fill("#callauth-phone", "12345")
    page.click("form.callauth-form button[type=submit]")
    page.wait_for_selector("#callauth-phone-error")
    yield "login, a bad phone"
    page.goto(site + CHALLENGE)  # no login in progress: the app's own login page, with why
    yield "the app's login page, with an error"
    page.goto(site + "/callauth/start/")  # a GET: the error page
    yield "error page"
    # An account of its own: the phones added below must not join PHONE's on the shared site.
    open_challenge(page, site, unused_phone())
    yield "waiting"
    held = hold_the_login(page)
    page.click(SIMULATE_THE_CALL)
    expect(page.locator(STATE)).to_have_attribute("data-state", "confirmed")
    yield "logging in"
    held[0].continue_()
    page.unroute("**/callauth/complete/")
    page.wait_for_url(site + "/")
    yield "home, logged in"
    page.goto(site + PHONES)
    yield "your phones"
    add_a_phone(page, unused_phone())
    yield "adding a phone: waiting"
    page.click(SIMULATE_THE_CALL)
    page.wait_for_url(site + PHONES)
    yield "your phones: one added"
    context.clear_cookies()
    open_challenge(page, site)
    api_post(context, site, SANDBOX_CALL, caller=OTHER_PHONE)
    expect(page.locator(STATE)).to_have_attribute("data-state", "ended")
    yield "ended: another phone"
    open_challenge(page, short_site)
    expect(page.locator(STATE)).to_have_attribute("data-state", "ended", timeout=10_000)
    yield "ended: time up"
    open_challenge(page, short_site, "+7 900 555-00-11")
    page.click(SIMULATE_THE_CALL)
    expect(page.locator(STATE)).to_have_attribute("data-state", "ended")
    yield "ended: no account"


@pytest.mark.parametrize(
    "scheme, screen, locale",
    [("light", PHONE_SCREEN, "ru-RU"), ("dark", DESKTOP_SCREEN, "en-US")],
    ids=["light-phone-ru", "dark-desktop-en"],
)
def test_axe_finds_nothing_serious_on_any_page_or_state(
    example_site: str,
    short_lived_site: str,
    new_context: NewContext,
    scheme: str,
    screen: dict[str, Any],
    locale: str,
) -> None:
    axe = Axe()
    context = new_context(color_scheme=scheme, locale=locale, **screen)
    page = context.new_page()
    found: dict[str, list[str]] = {}
    for state in reach_states(page, context, example_site, short_lived_site):
        violations = axe.run(page).response["violations"]
        found[state] = [f"{v['id']} ({v['impact']}, {len(v['nodes'])})" for v in violations]
    print(f"axe, {scheme} {locale}:", found)
    serious = {state: [v for v in found[state] if "serious" in v or "critical" in v] for state in found}
    assert serious == {state: [] for state in found}
    # A received call without JavaScript, the one look a script never shows: axe needs a script
    # to run, so the page's HTML is audited again with the page's own script kept out.
    still = new_context(java_script_enabled=False, locale=locale, **screen).new_page()
    open_challenge(still, example_site)
    with still.expect_navigation():
        still.click(SIMULATE_THE_CALL)
    html = still.content()
    assert 'data-state="confirmed"' in html
    page.route("**/callauth/challenge.js", lambda route: route.abort())
    page.route(site_page := example_site + "/still/", lambda route: route.fulfill(body=html, content_type=HTML))
    page.goto(site_page)
    still_found = axe.run(page).response["violations"]
    print("axe, a received call without JavaScript:", [(v["id"], v["impact"]) for v in still_found])
    assert [v["id"] for v in still_found if v["impact"] in ("serious", "critical")] == []
