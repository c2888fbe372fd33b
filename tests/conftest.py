"""Shared fixtures and the markers that skip what this machine cannot run.

Where a test goes: one behaviour, tested at one layer.

- Logic (what a flow, a row, a transition, a limit decides) in the flow and model tests:
  test_flows.py, test_models.py, test_transitions.py, test_throttling.py, ...
- The HTTP contract in the view tests (test_views.py, test_linking.py): status codes, error
  codes, redirects, session keys; one render per state, not per cause.
- Security suites (test_security_*.py) try each invariant end to end and assert what a
  person notices (the status, the error code, who is logged in, what the provider was
  asked), never wording or markup.
- Each provider: the shared contract (tests/provider_contract.py) plus its own shapes; the
  HTTP client they share in its own module (test_providers_http.py).
- Wording: the English of an answer in test_errors.py, its Russian in test_locale_ru.py;
  nowhere else (``assert_json_error`` checks the words only when given them).
- Browser tests (Playwright) only for what needs a real browser: script, focus, layout.
  "Browser" means Playwright; Django's test ``Client`` stands for a person's browser
  (``tests.helpers.clients``), ``LiveClient`` for one against a live server.

The markers (``MISSING`` below): a marked test is skipped, saying what is missing, and
fails instead of skipping when its environment variable is set (CI sets them, so no test
can silently vanish). ``postgres`` tests need real row locks and concurrent connections;
``browser`` tests drive headless Chromium; ``stack`` tests run the example site under
gunicorn on PostgreSQL and Redis; ``openapi`` tests fuzz it with Schemathesis.
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
from django_callauth.flows import push
from django_callauth.guards import limits
from django_callauth.providers import http
from tests.fake_sms_ru import FakeSmsRu
from tests.fake_smsc import APIKEY as SMSC_APIKEY
from tests.fake_smsc import FakeSmsc
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
from tests.helpers.caches import use_redis_cache

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext


def _on_postgres() -> bool:
    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


def _postgres_missing() -> str:
    if _on_postgres():
        return ""
    return (
        "needs PostgreSQL: SQLite has no row locks for race tests; "
        "set CALLAUTH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
    )


def _browser_missing() -> str:
    if importlib.util.find_spec("playwright") is None:
        return "browser test needs the playwright package: pip install -e '.[test]'"
    if shutil.which("chromium") is None:
        return "browser test needs Chromium on PATH (Debian: apt-get install chromium)"
    return ""


def _stack_missing() -> str:
    missing = stack_missing(STACK_DATABASE_URL, STACK_CACHE_URL)
    return f"stack test {missing}" if missing else ""


def _openapi_missing() -> str:
    if importlib.util.find_spec("schemathesis") is None:
        return "openapi test needs schemathesis: pip install -e '.[test]'"
    return ""


#: marker -> (what is missing on this machine, "" when nothing is; the variable that makes it fail instead).
MISSING: dict[str, tuple[Callable[[], str], str]] = {
    "postgres": (_postgres_missing, "CALLAUTH_REQUIRE_POSTGRES"),
    "browser": (_browser_missing, "CALLAUTH_REQUIRE_BROWSER"),
    "stack": (_stack_missing, "CALLAUTH_REQUIRE_STACK"),
    "openapi": (_openapi_missing, "CALLAUTH_REQUIRE_OPENAPI"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, (missing_here, required_by) in MISSING.items():
        marked = [item for item in items if marker in item.keywords]
        missing = missing_here() if marked else ""
        if not missing:
            continue
        if os.environ.get(required_by):
            raise pytest.UsageError(f"{required_by} is set but the {marker} tests cannot run: {missing}")
        skip = pytest.mark.skip(reason=missing)
        for item in marked:
            item.add_marker(skip)


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
def fake_smsc() -> Iterator[FakeSmsc]:
    """A fake SMSC.ru wait_call API on loopback, a real HTTP server."""
    with FakeSmsc() as fake:
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
def smsc(settings: Any, fake_smsc: FakeSmsc) -> Any:
    """SMSC on its fake, waiting for the account's signed handler callback (registered by hand)."""
    settings.CALLAUTH_PROVIDER = "smsc"
    settings.CALLAUTH_SMSC_APIKEY = SMSC_APIKEY
    settings.CALLAUTH_SMSC_URL = fake_smsc.base_url
    settings.CALLAUTH_SMSC_BACKUP_URL = None
    settings.CALLAUTH_SMSC_CALLBACK_SECRET = fake_smsc.secret
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
    push._brokers.clear()  # and no broker, with its streams and subscriber, from another test
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


@pytest.fixture
def redis_cache(settings: Any) -> Any:
    """The default cache on Redis (``use_redis_cache``)."""
    use_redis_cache(settings)
    return caches["default"]


@pytest.fixture(scope="session")
def example_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """Starts the example site with given settings (environment variables), once per distinct set; base URLs."""
    with ExitStack() as servers:
        started: dict[tuple[tuple[str, str], ...], str] = {}

        def site(*, asgi: bool = False, **settings: str) -> str:
            key = (("asgi", str(asgi)), *sorted(settings.items()))
            if key not in started:
                folder = tmp_path_factory.mktemp("example_site")
                started[key] = servers.enter_context(example_site_server(folder, asgi=asgi, **settings))
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
