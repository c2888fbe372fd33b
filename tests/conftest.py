"""Shared fixtures and the ``postgres`` and ``browser`` markers.

Tests marked ``postgres`` need real row locks and concurrent connections, which SQLite
does not have: they are skipped on SQLite with the reason, and fail instead of skipping
when ``CALLAUTH_REQUIRE_POSTGRES`` is set (CI sets it, so they can never silently vanish).

Tests marked ``browser`` drive the example site in headless Chromium with Playwright: they
are skipped, saying what is missing, without the ``playwright`` package or a ``chromium``
on ``PATH``, and fail instead of skipping when ``CALLAUTH_REQUIRE_BROWSER`` is set.

Tests marked ``stack`` run the example site under gunicorn on PostgreSQL and Redis, as
production does: they are skipped, saying what is missing, when PostgreSQL, Redis or
gunicorn cannot be reached, and fail instead of skipping when ``CALLAUTH_REQUIRE_STACK`` is
set (CI sets it).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest
import responses
from django.conf import settings
from django.core.cache import caches
from django.dispatch import Signal
from django.utils import timezone

from benchmarks.stack import stack_missing
from django_callauth import signals
from django_callauth.flows import cache as flow_cache
from django_callauth.guards import limits
from django_callauth.providers import http
from tests.fake_sms_ru import FakeSmsRu
from tests.fake_telefon_ip import FakeTelefonIp
from tests.helpers import (
    STACK_CACHE_URL,
    STACK_DATABASE_URL,
    T0,
    TOKEN,
    Clock,
    FlowFactory,
    RootLog,
    Sent,
    SignalLog,
    example_site_server,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext


def _on_postgres() -> bool:
    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


def _browser_missing() -> str:
    """Why the browser tests cannot run on this machine, or "" when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "needs the playwright package: pip install -e '.[test]'"
    if shutil.which("chromium") is None:
        return "needs Chromium on PATH (Debian: apt-get install chromium)"
    return ""


def _skip_postgres_tests(items: list[pytest.Item]) -> None:
    if _on_postgres():
        return
    if os.environ.get("CALLAUTH_REQUIRE_POSTGRES"):
        raise pytest.UsageError("CALLAUTH_REQUIRE_POSTGRES is set but the tests run on SQLite")
    skip = pytest.mark.skip(
        reason="needs PostgreSQL: SQLite has no row locks for race tests; "
        "set CALLAUTH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def _skip_browser_tests(items: list[pytest.Item]) -> None:
    browser_items = [item for item in items if "browser" in item.keywords]
    missing = _browser_missing() if browser_items else ""
    if not missing:
        return
    if os.environ.get("CALLAUTH_REQUIRE_BROWSER"):
        raise pytest.UsageError(f"CALLAUTH_REQUIRE_BROWSER is set but the browser tests cannot run: {missing}")
    skip = pytest.mark.skip(reason=f"browser test {missing}")
    for item in browser_items:
        item.add_marker(skip)


def _skip_stack_tests(items: list[pytest.Item]) -> None:
    stack_items = [item for item in items if "stack" in item.keywords]
    missing = stack_missing(STACK_DATABASE_URL, STACK_CACHE_URL) if stack_items else ""
    if not missing:
        return
    if os.environ.get("CALLAUTH_REQUIRE_STACK"):
        raise pytest.UsageError(f"CALLAUTH_REQUIRE_STACK is set but the stack tests cannot run: {missing}")
    skip = pytest.mark.skip(reason=f"stack test {missing}")
    for item in stack_items:
        item.add_marker(skip)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _skip_postgres_tests(items)
    _skip_browser_tests(items)
    _skip_stack_tests(items)


@pytest.fixture
def fake_telefon_ip() -> Iterator[FakeTelefonIp]:
    """A fake telefon-ip API on loopback, a real HTTP server."""
    with FakeTelefonIp() as fake:
        yield fake


@pytest.fixture
def fake_sms_ru() -> Iterator[FakeSmsRu]:
    """A fake sms.ru callcheck API on loopback, a real HTTP server."""
    with FakeSmsRu() as fake:
        yield fake


@pytest.fixture
def sms_ru(settings: Any, fake_sms_ru: FakeSmsRu) -> Any:
    """sms.ru on its fake, waiting for the account callback (registered by hand)."""
    settings.CALLAUTH_PROVIDER = "sms_ru"
    settings.CALLAUTH_SMS_RU_API_ID = fake_sms_ru.api_id
    settings.CALLAUTH_SMS_RU_URL = fake_sms_ru.base_url
    settings.CALLAUTH_SMS_RU_CALLBACK = True
    return settings


@pytest.fixture
def telefon_ip(settings: Any) -> Any:
    """The telefon-ip provider in webhook mode, with the helpers' token."""
    settings.CALLAUTH_PROVIDER = "telefon_ip"
    settings.CALLAUTH_TELEFON_IP_TOKEN = TOKEN
    settings.CALLAUTH_WEBHOOK_BASE_URL = "https://site.example"
    return settings


@pytest.fixture
def telefon_ip_api(telefon_ip: Any) -> Iterator[responses.RequestsMock]:
    """telefon-ip's HTTP API played by ``responses``: every request the app makes is recorded in ``.calls``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def flow_factory() -> FlowFactory:
    """Makes flow rows: pending, for PHONE, on the sandbox, living two minutes from now, unless told."""
    return FlowFactory()


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    """An account with a password and no phone."""
    return django_user_model.objects.create_user(username="alice", password="a long password")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Time stands at T0 until the test moves it: ``timezone.now()``, the rate limiter's clock and the
    clock provider requests reckon their deadlines on.

    Ask for it before any fixture that starts flows or sessions, so that they are made at T0 too.
    """
    clock = Clock(T0)
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    monkeypatch.setattr(limits, "_clock", lambda: clock.now.timestamp())
    monkeypatch.setattr(http, "_clock", lambda: clock.now.timestamp())
    return clock


@pytest.fixture
def sent() -> Iterator[SignalLog]:
    """Records every signal of django_callauth.signals the test sends."""
    log = SignalLog()
    receivers = []
    for name, signal in vars(signals).items():
        if isinstance(signal, Signal):

            def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
                kwargs.pop("signal")
                log.append(Sent(_name, sender, kwargs))

            signal.connect(receiver)
            receivers.append((signal, receiver))
    yield log
    for signal, receiver in receivers:
        signal.disconnect(receiver)


@pytest.fixture(autouse=True)
def _empty_caches() -> Iterator[None]:
    """Rate-limit counters (and locks) live in the cache: every test starts with none.

    Nor with the status poll's back-off from a cache another test made fail.
    """
    for cache in caches.all():
        cache.clear()
    flow_cache._failed_at.clear()
    yield


@pytest.fixture
def shared_cache(settings: Any, tmp_path: Any) -> Any:
    """A cache every process shares, whose copies the status poll trusts (flow_cache.shared).

    The configured cache when it is one (Redis, with CALLAUTH_TEST_CACHE_URL), else a
    FileBasedCache: the tests' default LocMemCache is per process, so polls never read it.
    """
    if not flow_cache.shared():
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
        }
    return caches["default"]


@pytest.fixture(scope="session")
def example_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """Starts the example site with given settings (environment variables), once per distinct set; base URLs."""
    with ExitStack() as servers:
        started: dict[tuple[tuple[str, str], ...], str] = {}

        def site(**settings: str) -> str:
            key = tuple(sorted(settings.items()))
            if key not in started:
                folder = tmp_path_factory.mktemp("example_site")
                started[key] = servers.enter_context(example_site_server(folder, **settings))
            return started[key]

        yield site


@pytest.fixture(scope="session")
def example_site(example_sites: Callable[..., str]) -> str:
    """The example site on the sandbox with its default settings; its base URL."""
    return example_sites()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Chromium (Debian's, never a downloaded build), driven by Playwright.

    Module-scoped on purpose: while the sync API runs, its event loop is the thread's
    running loop, and Django's async-unsafe guard would refuse the ORM in later tests.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        yield browser
        browser.close()


@pytest.fixture
def new_context(chromium: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Makes fresh browser contexts (own cookies, English unless told), all closed after the test."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = chromium.new_context(**{"locale": "en-US", **options})
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def root_log() -> Iterator[RootLog]:
    """Everything that reaches the root logger's handlers, with the root at DEBUG unless a test sets another level.

    Unlike ``caplog``, nothing here sets the level of any logger but the root.
    """
    root, handler = logging.getLogger(), RootLog()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(saved_level)
