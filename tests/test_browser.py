"""The challenge page in a real browser: headless Chromium on the example site, over HTTP.

The invariant under test: a login the server performed is never lost by the browser.
The page's script finishes the login by itself when its poll sees the call confirmed,
and the person may press "I have called" or "Simulate the call" at that very moment:
whatever the timing, the server is asked to finish once and the browser ends on the
home page, logged in as the phone.

The fixtures (the example site as a ``runserver`` process, Chromium, fresh browser
contexts) are in conftest.py; these tests are skipped when Playwright or Chromium is
missing, and fail instead when ``CALLAUTH_REQUIRE_BROWSER`` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.helpers import (
    CHALLENGE,
    DESKTOP_SCREEN,
    OTHER_PHONE,
    PHONE,
    PHONE_SCREEN,
    SANDBOX_CALL,
    TYPED_PHONE,
    api_post,
    home_phone,
    open_challenge,
)

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect
except ImportError:  # the tests are skipped (or fail under CALLAUTH_REQUIRE_BROWSER), see conftest
    pass

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Request, Response

pytestmark = pytest.mark.browser

POLL_MS = 1000  # how often challenge.js asks the status
START = "/callauth/start/"
STATUS = "/callauth/status/"
COMPLETE = "/callauth/complete/"
I_HAVE_CALLED = "#callauth-complete button"
SIMULATE_THE_CALL = "#callauth-sandbox-call"
STATUS_LINE = "#callauth-status"

NewContext = Callable[..., "BrowserContext"]


def play_the_call(context: BrowserContext, site: str) -> None:
    """The phone calls the number: the sandbox is told so, outside the page."""
    assert api_post(context, site, SANDBOX_CALL)["status"] == "confirmed"


def session_phone(context: BrowserContext, site: str) -> str | None:
    """The phone this browser is logged in with, asked of the home page; None when logged out."""
    return home_phone(context.request.get(site + "/").text())


def expect_logged_in_home(page: Page, site: str) -> None:
    page.wait_for_url(site + "/")
    expect(page.locator("strong.home-phone")).to_have_text(PHONE)


@pytest.mark.parametrize(
    "screen, locale, waiting",
    [(PHONE_SCREEN, "ru-RU", "Ждём ваш звонок…"), (DESKTOP_SCREEN, "en-US", "Waiting for your call…")],
    ids=["phone-ru", "desktop-en"],
)
def test_sandbox_login_ends_on_the_home_page_logged_in(
    example_site: str, new_context: NewContext, screen: dict[str, Any], locale: str, waiting: str
) -> None:
    page = new_context(locale=locale, **screen).new_page()
    open_challenge(page, example_site)
    expect(page.locator(STATUS_LINE)).to_have_text(waiting)
    page.click(SIMULATE_THE_CALL)
    expect_logged_in_home(page, example_site)


def test_i_have_called_before_calling_says_so_and_the_call_still_logs_in(
    example_site: str, new_context: NewContext
) -> None:
    page = new_context().new_page()
    open_challenge(page, example_site)
    page.click(I_HAVE_CALLED)
    expect(page.locator(STATUS_LINE)).to_have_text(
        "We have not received your call yet. Call the number shown, then try again."
    )
    assert page.url == example_site + CHALLENGE
    page.click(SIMULATE_THE_CALL)
    expect_logged_in_home(page, example_site)


def test_i_have_called_after_a_call_from_another_phone_shows_why_and_offers_to_start_again(
    example_site: str, new_context: NewContext
) -> None:
    context = new_context()
    page = context.new_page()
    open_challenge(page, example_site)
    assert api_post(context, example_site, SANDBOX_CALL, caller=OTHER_PHONE)["status"] == "failed"
    with page.expect_navigation():  # the script reloads the page: the server says why the login ended
        page.click(I_HAVE_CALLED)
    expect(page.get_by_role("heading", level=1)).to_have_text("You are not logged in")
    expect(page.locator(".callauth-reason")).to_be_visible()  # its words: test_errors.py
    for gone in (I_HAVE_CALLED, SIMULATE_THE_CALL, ".callauth-number", ".callauth-qr", ".callauth-countdown"):
        expect(page.locator(gone)).to_have_count(0)
    # One button starts again with the same phone: a new number to call.
    with page.expect_navigation():
        page.click("#callauth-restart")
    expect(page.locator("#callauth-challenge")).to_have_attribute("data-state", "waiting")
    expect(page.locator(".callauth-lead strong")).to_have_text(TYPED_PHONE)


def test_without_javascript_the_buttons_post_the_forms_and_log_in(example_site: str, new_context: NewContext) -> None:
    page = new_context(java_script_enabled=False).new_page()
    open_challenge(page, example_site)
    with page.expect_navigation():
        page.click(SIMULATE_THE_CALL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Call received")
    expect(page.locator(STATUS_LINE)).to_have_text("Press the button to log in.")
    expect(page.locator(".callauth-qr")).to_have_count(0)  # gone with the number: the call came
    page.click(I_HAVE_CALLED)
    expect_logged_in_home(page, example_site)


@dataclass
class Try:
    """One press, timed against the poll that finds the call confirmed."""

    button: str
    moment: str  # "before" the poll is sent, or "after" its answer (saying confirmed) reaches the page
    offset_ms: int
    called_first: bool = True  # False: the flow is still pending, the press on "Simulate the call" is the call

    def __str__(self) -> str:
        name = "I have called" if self.button == I_HAVE_CALLED else "Simulate the call"
        call = "" if self.called_first else ", not called yet"
        return f"{name!r} {self.offset_ms} ms {self.moment} the poll{call}"


TRIES = [
    *(Try(I_HAVE_CALLED, "before", ms) for ms in (2000, 500, 100, 20, 0)),
    *(Try(I_HAVE_CALLED, "after", 0) for _ in range(5)),  # as the page learns that the call came
    *(Try(I_HAVE_CALLED, "after", ms) for ms in (10, 25, 50, 100)),
    *(Try(SIMULATE_THE_CALL, "before", ms, called_first=False) for ms in (500, 20, 0)),
    *(Try(SIMULATE_THE_CALL, "after", ms) for ms in (0, 0, 10)),
]


@dataclass
class Outcome:
    shown: str  # the phone on the home page, or the address of the page the browser ended on
    session: str | None  # the phone this browser is logged in with
    completes: int  # how many times the browser asked the server to finish

    @property
    def lost(self) -> bool:
        return self.shown != PHONE or self.session != PHONE


def fire_the_poll(page: Page) -> None:
    """Let the page's clock reach its next status poll, now."""
    try:
        page.clock.run_for(POLL_MS)
    except PlaywrightError:
        pass  # the page is leaving: there is no poll left to fire


def press(page: Page, site: str, button: str) -> None:
    """Press ``button`` now, if the challenge page still shows it.

    ``force``: no waiting for the button to be still and ready, which would make the press
    late; it is a real mouse click all the same.
    """
    if page.url != site + CHALLENGE:
        return  # the page already left: nothing to press
    try:
        if not page.is_visible(button):
            return  # the page learnt of the call and put the button away: no finger can press it
        page.click(button, force=True, timeout=1000)
    except PlaywrightError:
        pass  # the page left under the finger


def race(new_context: NewContext, site: str, attempt: Try) -> Outcome:
    context = new_context()
    page = context.new_page()
    # The page's timers run on a paused clock: its poll is fired exactly when the try says.
    now = datetime.now()
    page.clock.install(time=now)
    page.clock.pause_at(now + timedelta(minutes=1))  # ahead of the installed clock, which runs till then
    completes: list[Request] = []
    page.on("request", lambda r: completes.append(r) if r.url == site + COMPLETE and r.method == "POST" else None)
    context.request.get(site + "/login/")  # the CSRF cookie
    assert api_post(context, site, START, phone=TYPED_PHONE)["status"] == "pending"
    page.goto(site + CHALLENGE)
    if attempt.called_first:
        play_the_call(context, site)
    if attempt.moment == "before":
        press(page, site, attempt.button)
        page.wait_for_timeout(attempt.offset_ms)
    else:

        def press_after_the_poll(response: Response) -> None:
            if response.url == site + STATUS:
                page.remove_listener("response", press_after_the_poll)
                page.wait_for_timeout(attempt.offset_ms)
                press(page, site, attempt.button)

        page.on("response", press_after_the_poll)
    fire_the_poll(page)
    # Where the browser settles: the home page, or a page offering to log in again.
    page.wait_for_selector("strong.home-phone, form.callauth-form", timeout=10_000)
    page.wait_for_load_state()
    outcome = Outcome(home_phone(page.content()) or page.url, session_phone(context, site), len(completes))
    context.close()
    return outcome


def test_a_press_racing_the_scripts_own_login_never_loses_it(example_site: str, new_context: NewContext) -> None:
    outcomes = [(attempt, race(new_context, example_site, attempt)) for attempt in TRIES]
    lost = [f"{attempt}: {outcome}" for attempt, outcome in outcomes if outcome.lost]
    print(f"lost logins: {len(lost)} of {len(outcomes)}")
    assert not lost, "\n".join(lost)
    twice = [f"{attempt}: {outcome}" for attempt, outcome in outcomes if outcome.completes != 1]
    assert not twice, "the server must be asked to finish exactly once:\n" + "\n".join(twice)


# -- the push channel: the example under uvicorn (ASGI), where the page holds an events stream ----

EVENTS = "/callauth/events/"


def flow_requests(page: Page) -> list[str]:
    """The paths of the app's endpoints this page asks, in order, from now on (static files aside)."""
    asked: list[str] = []
    page.on("request", lambda request: asked.append(urlsplit(request.url).path))
    return asked


def of_the_flow(asked: list[str]) -> list[str]:
    return [path for path in asked if path.startswith("/callauth/")]


def test_the_page_hears_the_call_through_its_stream_in_four_requests(
    example_sites: Callable[..., str], new_context: NewContext
) -> None:
    site = example_sites(asgi=True)
    context = new_context()
    page = context.new_page()
    asked = flow_requests(page)
    with page.expect_request(lambda request: request.url.endswith(EVENTS)):
        open_challenge(page, site)
    play_the_call(context, site)  # the phone calls: the page is told, never asks
    expect_logged_in_home(page, site)
    assert of_the_flow(asked) == [START, CHALLENGE, EVENTS, COMPLETE]


def test_a_stream_that_ends_mid_flow_falls_back_to_polls_and_logs_in_once(
    example_sites: Callable[..., str], new_context: NewContext
) -> None:
    """A proxy that cuts the stream (or buffers, or times out) leaves the page polling, and it still logs in."""
    site = example_sites(asgi=True)
    context = new_context()
    page = context.new_page()
    first_event_only = 'retry: 3000\n\nevent: status\ndata: {"status": "pending", "expires_in": 100}\n\n'
    page.route(
        "**" + EVENTS,
        lambda route: route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=first_event_only),
    )
    asked = flow_requests(page)
    with page.expect_request(lambda request: request.url.endswith(STATUS)):
        open_challenge(page, site)
    play_the_call(context, site)
    expect_logged_in_home(page, site)
    flow = of_the_flow(asked)
    assert flow[:3] == [START, CHALLENGE, EVENTS]
    assert STATUS in flow and flow.count(COMPLETE) == 1
