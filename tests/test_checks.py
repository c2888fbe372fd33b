"""System checks: each id fires in its situation, and only there."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.checks import Error, Warning, run_checks
from django.db import models

from django_callauth import checks
from django_callauth.adapter import CallAuthAdapter
from django_callauth.providers.base import CallAuthProvider, CallReport, StartedCall

SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
REDIS = "redis://127.0.0.1:6379/0"  # never connected to: checks only read the configuration
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


class SimulatedProvider(CallAuthProvider):
    """A project's own development provider: as open as the sandbox."""

    name = "dev"
    simulated = True

    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        raise NotImplementedError

    def check(self, provider_id: str) -> CallReport:
        raise NotImplementedError


class NotAProvider:
    pass


@pytest.fixture
def production(settings: Any) -> Any:
    """A correct production configuration: no check has anything to say."""
    settings.DEBUG = False
    settings.CALLAUTH_PROVIDER = "telefon_ip"
    settings.CALLAUTH_TELEFON_IP_TOKEN = "token"
    settings.CALLAUTH_WEBHOOK_BASE_URL = "https://site.example"
    settings.CALLAUTH_TTL = 120
    settings.CALLAUTH_CHECK_INTERVAL = 3
    settings.CALLAUTH_COMPLETE_WINDOW = 300
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS}}
    return settings


def callauth_ids(messages: list[Any]) -> list[str]:
    return sorted(m.id for m in messages if m.id.startswith("callauth."))


def all_checks() -> list[Any]:
    return [
        *checks.check_sandbox_in_production(),
        *checks.check_provider(),
        *checks.check_backend_installed(),
        *checks.check_timings(),
        *checks.check_sessions(),
        *checks.check_rate_limits(),
        *checks.check_client_address(),
        *checks.check_adapter(),
    ]


def test_a_correct_production_configuration_is_silent(production: Any) -> None:
    assert all_checks() == []
    assert callauth_ids(run_checks()) == []


def test_the_sandbox_in_development_is_silent(settings: Any) -> None:
    settings.DEBUG = True
    settings.CALLAUTH_PROVIDER = "sandbox"
    settings.CALLAUTH_WEBHOOK_BASE_URL = "http://localhost:8000"
    assert all_checks() == []


# -- E001 -------------------------------------------------------------------------


def test_e001_sandbox_without_debug(production: Any) -> None:
    production.CALLAUTH_PROVIDER = "sandbox"
    assert checks.check_sandbox_in_production() == [
        Error(
            "CALLAUTH_PROVIDER is 'sandbox' while DEBUG is False.",
            hint="The sandbox lets anyone log in as any phone. Use 'telefon_ip' in production.",
            id="callauth.E001",
        )
    ]


@pytest.mark.parametrize(
    "provider",
    ["django_callauth.providers.sandbox.SandboxProvider", "tests.test_checks.SimulatedProvider"],
    ids=["sandbox-by-path", "project-simulated"],
)
def test_e001_any_simulated_provider_without_debug(production: Any, provider: str) -> None:
    production.CALLAUTH_PROVIDER = provider
    assert [m.id for m in checks.check_sandbox_in_production()] == ["callauth.E001"]


def test_e001_not_with_debug(production: Any) -> None:
    production.CALLAUTH_PROVIDER = "sandbox"
    production.DEBUG = True
    assert checks.check_sandbox_in_production() == []


def test_e001_not_for_a_real_provider(production: Any) -> None:
    assert checks.check_sandbox_in_production() == []


def test_e001_leaves_a_broken_provider_to_e002(production: Any) -> None:
    production.CALLAUTH_PROVIDER = "no.such.Provider"
    assert checks.check_sandbox_in_production() == []
    assert [m.id for m in checks.check_provider()] == ["callauth.E002"]


def test_e001_is_tagged_security() -> None:
    assert "security" in checks.check_sandbox_in_production.tags  # type: ignore[attr-defined]


# -- E002, E003 ---------------------------------------------------------------------


def test_e002_provider_cannot_be_imported(production: Any) -> None:
    production.CALLAUTH_PROVIDER = "no.such.Provider"
    [message] = checks.check_provider()
    assert message.id == "callauth.E002"
    assert isinstance(message, Error)
    assert message.msg.startswith("CALLAUTH_PROVIDER 'no.such.Provider' cannot be imported: ")


def test_e002_a_name_that_is_no_path(production: Any) -> None:
    production.CALLAUTH_PROVIDER = "telefonip"
    [message] = checks.check_provider()
    assert message.id == "callauth.E002"
    assert message.msg.startswith("CALLAUTH_PROVIDER 'telefonip' cannot be imported: ")


def test_e002_not_a_provider_class(production: Any) -> None:
    production.CALLAUTH_PROVIDER = "tests.test_checks.NotAProvider"
    assert checks.check_provider() == [
        Error(
            "CALLAUTH_PROVIDER 'tests.test_checks.NotAProvider' is not a CallAuthProvider subclass", id="callauth.E002"
        )
    ]


@pytest.mark.parametrize("provider", ["sandbox", "django_callauth.providers.telefon_ip.TelefonIpProvider"])
def test_e002_not_for_built_in_providers(production: Any, provider: str) -> None:
    production.CALLAUTH_PROVIDER = provider
    assert [m.id for m in checks.check_provider()] == []


@pytest.mark.parametrize("token", ["", None])
def test_e003_telefon_ip_without_token(production: Any, token: Any) -> None:
    production.CALLAUTH_TELEFON_IP_TOKEN = token
    assert checks.check_provider() == [
        Error(
            "CALLAUTH_TELEFON_IP_TOKEN is empty.",
            hint="Set the token from telefon-ip.ru, or CALLAUTH_PROVIDER = 'sandbox' for development.",
            id="callauth.E003",
        )
    ]


def test_e003_not_for_the_sandbox(production: Any) -> None:
    production.DEBUG = True
    production.CALLAUTH_PROVIDER = "sandbox"
    production.CALLAUTH_TELEFON_IP_TOKEN = ""
    assert checks.check_provider() == []


def test_e003_for_the_configured_provider_whatever_it_is(production: Any) -> None:
    production.CALLAUTH_PROVIDER = "sms_ru"
    production.CALLAUTH_SMS_RU_API_ID = ""
    production.CALLAUTH_TELEFON_IP_TOKEN = ""  # not configured: not needed
    assert checks.check_provider() == [
        Error(
            "CALLAUTH_SMS_RU_API_ID is empty.",
            hint="Set the api_id from your sms.ru account, or CALLAUTH_PROVIDER = 'sandbox' for development.",
            id="callauth.E003",
        )
    ]


def test_e003_for_every_provider_of_a_failover_list(production: Any) -> None:
    production.CALLAUTH_PROVIDER = ["telefon_ip", "sms_ru"]
    production.CALLAUTH_SMS_RU_API_ID = ""
    production.CALLAUTH_TELEFON_IP_TOKEN = ""
    assert [m.msg for m in checks.check_provider()] == [
        "CALLAUTH_TELEFON_IP_TOKEN is empty.",
        "CALLAUTH_SMS_RU_API_ID is empty.",
    ]


def test_a_failover_list_with_its_settings_is_silent(production: Any) -> None:
    production.CALLAUTH_PROVIDER = ["telefon_ip", "sms_ru"]
    production.CALLAUTH_SMS_RU_API_ID = "api-id"
    assert all_checks() == []


def test_e012_a_provider_listed_twice(production: Any) -> None:
    production.CALLAUTH_PROVIDER = ["telefon_ip", "django_callauth.providers.telefon_ip.TelefonIpProvider"]
    assert checks.check_provider() == [
        Error(
            "CALLAUTH_PROVIDER names a provider twice: telefon_ip, telefon_ip.",
            hint="A failover list asks each provider once; list each one once.",
            id="callauth.E012",
        )
    ]


def test_e002_an_empty_list(production: Any) -> None:
    production.CALLAUTH_PROVIDER = []
    assert checks.check_provider() == [Error("CALLAUTH_PROVIDER is an empty list.", id="callauth.E002")]


def test_e001_a_failover_list_that_ends_in_the_sandbox(production: Any) -> None:
    production.CALLAUTH_PROVIDER = ["telefon_ip", "sandbox"]
    assert [m.id for m in checks.check_sandbox_in_production()] == ["callauth.E001"]


# -- W001, E004 ---------------------------------------------------------------------


def test_w001_webhook_over_plain_http(production: Any) -> None:
    production.CALLAUTH_WEBHOOK_BASE_URL = "http://site.example"
    assert checks.check_provider() == [
        Warning(
            "CALLAUTH_WEBHOOK_BASE_URL is not https.",
            hint="The webhook URL carries a secret; send it over TLS.",
            id="callauth.W001",
        )
    ]


def test_w001_not_in_development(production: Any) -> None:
    production.DEBUG = True
    production.CALLAUTH_WEBHOOK_BASE_URL = "http://localhost:8000"
    assert checks.check_provider() == []


@pytest.mark.parametrize("base", ["", "https://site.example", "https://site.example/"])
def test_w001_not_for_https_or_check_mode(production: Any, base: str) -> None:
    production.CALLAUTH_WEBHOOK_BASE_URL = base
    assert checks.check_provider() == []


@pytest.mark.parametrize(
    "base", ["https://site.example/?via=callauth", "https://site.example/#hook", "https://site.example?"]
)
def test_e004_webhook_base_with_query_or_fragment(production: Any, base: str) -> None:
    production.CALLAUTH_WEBHOOK_BASE_URL = base
    assert checks.check_provider() == [
        Error(
            "CALLAUTH_WEBHOOK_BASE_URL must be an origin without a query or fragment.",
            hint="The provider appends its own query string to the webhook URL.",
            id="callauth.E004",
        )
    ]


def test_w001_and_e004_together(production: Any) -> None:
    production.CALLAUTH_WEBHOOK_BASE_URL = "http://site.example/?a=1"
    assert [m.id for m in checks.check_provider()] == ["callauth.W001", "callauth.E004"]


# -- E005 ---------------------------------------------------------------------------


def test_e005_backend_not_installed(production: Any) -> None:
    production.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert checks.check_backend_installed() == [
        Error(
            "django_callauth.backends.CallAuthBackend is not in AUTHENTICATION_BACKENDS.",
            hint="Add it beside ModelBackend, or confirmed calls cannot log anyone in.",
            id="callauth.E005",
        )
    ]


def test_e005_not_when_installed_alone(production: Any) -> None:
    production.AUTHENTICATION_BACKENDS = ["django_callauth.backends.CallAuthBackend"]
    assert checks.check_backend_installed() == []


# -- E006, W002 ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["TTL", "CHECK_INTERVAL", "COMPLETE_WINDOW"])
@pytest.mark.parametrize("value", [0, -5, "soon", None])
def test_e006_timings_must_be_positive(production: Any, name: str, value: Any) -> None:
    setattr(production, f"CALLAUTH_{name}", value)
    assert checks.check_timings() == [
        Error(f"CALLAUTH_{name} must be a positive number of seconds.", id="callauth.E006")
    ]


def test_e006_one_error_per_bad_setting(production: Any) -> None:
    production.CALLAUTH_TTL = 0
    production.CALLAUTH_COMPLETE_WINDOW = -1
    assert [m.msg for m in checks.check_timings()] == [
        "CALLAUTH_TTL must be a positive number of seconds.",
        "CALLAUTH_COMPLETE_WINDOW must be a positive number of seconds.",
    ]


def test_w002_ttl_longer_than_the_provider_allows(production: Any) -> None:
    production.CALLAUTH_TTL = 121
    assert checks.check_timings() == [
        Warning(
            "CALLAUTH_TTL is longer than the provider's 120 seconds.",
            hint="telefon_ip's numbers stop working after 120 seconds, so its flows end then.",
            id="callauth.W002",
        )
    ]


@pytest.mark.parametrize("ttl", [1, 60, 120, "90"])
def test_w002_not_within_120_seconds(production: Any, ttl: Any) -> None:
    production.CALLAUTH_TTL = ttl
    assert checks.check_timings() == []


def test_w002_compares_with_each_providers_own_lifetime(production: Any) -> None:
    production.CALLAUTH_SMS_RU_API_ID = "api-id"
    production.CALLAUTH_TTL = 300
    production.CALLAUTH_PROVIDER = "sms_ru"  # its numbers live 5 minutes
    assert checks.check_timings() == []
    production.CALLAUTH_PROVIDER = ["sms_ru", "telefon_ip"]
    [warning] = checks.check_timings()
    assert (warning.id, warning.msg) == ("callauth.W002", "CALLAUTH_TTL is longer than the provider's 120 seconds.")


def test_an_unset_ttl_is_each_providers_lifetime_and_no_problem(production: Any) -> None:
    del production.CALLAUTH_TTL
    assert checks.check_timings() == []


def test_w002_not_with_an_e006(production: Any) -> None:
    production.CALLAUTH_TTL = 500
    production.CALLAUTH_CHECK_INTERVAL = 0
    assert [m.id for m in checks.check_timings()] == ["callauth.E006"]


# -- E007 ---------------------------------------------------------------------------


def test_e007_sessions_missing(production: Any) -> None:
    production.MIDDLEWARE = [m for m in production.MIDDLEWARE if m != SESSION_MIDDLEWARE]
    assert checks.check_sessions() == [
        Error(
            "django_callauth needs SessionMiddleware in MIDDLEWARE.",
            hint="A flow belongs to the browser session that started it.",
            id="callauth.E007",
        )
    ]


def test_e007_not_with_sessions(production: Any) -> None:
    assert SESSION_MIDDLEWARE in production.MIDDLEWARE
    assert checks.check_sessions() == []


# -- E008 ---------------------------------------------------------------------------


def test_e008_adapter_cannot_be_imported(production: Any) -> None:
    production.CALLAUTH_ADAPTER = "no.such.Adapter"
    [message] = checks.check_adapter()
    assert message.id == "callauth.E008"
    assert message.msg.startswith("CALLAUTH_ADAPTER 'no.such.Adapter' cannot be imported:")


def test_e008_adapter_of_the_wrong_kind(production: Any) -> None:
    production.CALLAUTH_ADAPTER = "django_callauth.backends.CallAuthBackend"
    assert checks.check_adapter() == [
        Error(
            "CALLAUTH_ADAPTER 'django_callauth.backends.CallAuthBackend' is not a subclass of CallAuthAdapter.",
            id="callauth.E008",
        )
    ]


def test_e008_not_with_a_subclass(production: Any) -> None:
    production.CALLAUTH_ADAPTER = "tests.test_adapter.ProjectAdapter"
    assert checks.check_adapter() == []


# -- E009, W003: where the rate limits are counted; E010: the rates; E011: the client address


def test_e009_rate_limits_in_a_dummy_cache(production: Any) -> None:
    production.CACHES = DUMMY
    [error] = all_checks()
    assert (error.id, error.msg) == (
        "callauth.E009",
        "The rate limits need a working cache, and CACHES['default'] is a DummyCache.",
    )


def test_e009_rate_limit_cache_missing(production: Any) -> None:
    production.CALLAUTH_CACHE = "limits"
    [error] = all_checks()
    assert (error.id, error.msg) == (
        "callauth.E009",
        "The rate limits need a working cache, and CACHES['limits'] is missing.",
    )


def test_e009_not_when_every_limit_is_off(production: Any) -> None:
    production.CACHES = DUMMY
    production.CALLAUTH_RATE_LIMITS = {"ip": None, "phone": None, "global": None}
    assert all_checks() == []


def test_w003_per_process_cache_in_production(production: Any) -> None:
    production.CACHES = LOCMEM
    [warning] = all_checks()
    assert isinstance(warning, Warning)
    assert warning.id == "callauth.W003"
    assert "multiplied by the number of processes" in warning.hint


def test_w003_not_in_development(production: Any) -> None:
    production.CACHES = LOCMEM
    production.DEBUG = True
    assert all_checks() == []


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (
            {"ip": "10 per minute"},
            "CALLAUTH_RATE_LIMITS['ip'] is not valid: '10 per minute' is not a rate like '10/m' or '3/10m'",
        ),
        (
            {"phone": "0/m"},
            "CALLAUTH_RATE_LIMITS['phone'] is not valid: '0/m' must allow at least one request in a positive period",
        ),
        ({"global": 100}, "CALLAUTH_RATE_LIMITS['global'] is not valid: 'int' object has no attribute 'split'"),
        ({"session": "5/m"}, "CALLAUTH_RATE_LIMITS has an unknown scope 'session'."),
    ],
)
def test_e010_rate_limits_that_cannot_be_read(production: Any, limits: dict[str, Any], message: str) -> None:
    production.CALLAUTH_RATE_LIMITS = limits
    [error] = all_checks()
    assert (error.id, error.msg) == ("callauth.E010", message)


def test_e011_proxy_count_and_header_together(production: Any) -> None:
    production.CALLAUTH_TRUSTED_PROXY_COUNT = 1
    production.CALLAUTH_TRUSTED_CLIENT_IP_HEADER = "X-Real-IP"
    assert callauth_ids(all_checks()) == ["callauth.E011"]


def test_e011_negative_proxy_count(production: Any) -> None:
    production.CALLAUTH_TRUSTED_PROXY_COUNT = -1
    assert callauth_ids(all_checks()) == ["callauth.E011"]


# -- registration -------------------------------------------------------------------


def _broken_adapter(s: Any) -> None:
    s.CALLAUTH_ADAPTER = "no.such.Adapter"


def _sandbox_in_production(s: Any) -> None:
    s.CALLAUTH_PROVIDER = "sandbox"


def _broken_provider(s: Any) -> None:
    s.CALLAUTH_PROVIDER = "no.such.Provider"


def _no_token(s: Any) -> None:
    s.CALLAUTH_TELEFON_IP_TOKEN = ""


def _provider_twice(s: Any) -> None:
    s.CALLAUTH_PROVIDER = ["telefon_ip", "telefon_ip"]


def _http_webhook(s: Any) -> None:
    s.CALLAUTH_WEBHOOK_BASE_URL = "http://site.example"


def _webhook_with_query(s: Any) -> None:
    s.CALLAUTH_WEBHOOK_BASE_URL = "https://site.example/?x=1"


def _no_backend(s: Any) -> None:
    s.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]


def _bad_ttl(s: Any) -> None:
    s.CALLAUTH_TTL = 0


def _long_ttl(s: Any) -> None:
    s.CALLAUTH_TTL = 300


def _dummy_cache(s: Any) -> None:
    s.CACHES = DUMMY


def _locmem_cache(s: Any) -> None:
    s.CACHES = LOCMEM


def _bad_rate(s: Any) -> None:
    s.CALLAUTH_RATE_LIMITS = {"ip": "lots"}


def _two_proxy_settings(s: Any) -> None:
    s.CALLAUTH_TRUSTED_PROXY_COUNT = 1
    s.CALLAUTH_TRUSTED_CLIENT_IP_HEADER = "X-Real-IP"


def _no_sessions(s: Any) -> None:
    s.MIDDLEWARE = [m for m in s.MIDDLEWARE if m != SESSION_MIDDLEWARE]


@pytest.mark.parametrize(
    ("situation", "expected"),
    [
        (_sandbox_in_production, "callauth.E001"),
        (_broken_provider, "callauth.E002"),
        (_no_token, "callauth.E003"),
        (_webhook_with_query, "callauth.E004"),
        (_no_backend, "callauth.E005"),
        (_bad_ttl, "callauth.E006"),
        (_no_sessions, "callauth.E007"),
        (_broken_adapter, "callauth.E008"),
        (_dummy_cache, "callauth.E009"),
        (_bad_rate, "callauth.E010"),
        (_two_proxy_settings, "callauth.E011"),
        (_provider_twice, "callauth.E012"),
        (_locmem_cache, "callauth.W003"),
        (_http_webhook, "callauth.W001"),
        (_long_ttl, "callauth.W002"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__.strip("_"),
)
def test_checks_are_registered(production: Any, situation: Any, expected: str) -> None:
    situation(production)
    assert callauth_ids(run_checks()) == [expected]


def test_sandbox_check_runs_without_deploy_flag(production: Any) -> None:
    # Not a --deploy check: `manage.py check` and `runserver` show it too.
    _sandbox_in_production(production)
    assert callauth_ids(run_checks(include_deployment_checks=False)) == ["callauth.E001"]
    assert callauth_ids(run_checks(tags=["security"])) == ["callauth.E001"]


def test_the_test_settings_fail_only_checks_they_silence(settings: Any) -> None:
    assert settings.DEBUG is False
    assert settings.CALLAUTH_PROVIDER == "sandbox"
    messages = [m for m in run_checks() if m.id.startswith("callauth.")]
    # E001 always; W003 when the limits count in the LocMemCache (not on Redis).
    assert "callauth.E001" in [m.id for m in messages]
    assert {m.id for m in messages} <= {"callauth.E001", "callauth.W003"}
    assert all(m.is_silenced() for m in messages)


# -- W004: signup with the default adapter and a user model whose username is no phone -----------


class EmailUser(AbstractBaseUser):
    email = models.EmailField(unique=True)
    USERNAME_FIELD = "email"

    class Meta:
        app_label = "callauth_checks"
        managed = False


class EmailAdapter(CallAuthAdapter):
    def username_for_phone(self, phone: str) -> str:
        return phone[1:] + "@phones.example"


@pytest.fixture
def email_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("django.contrib.auth.get_user_model", lambda: EmailUser)


def test_w004_signup_would_store_a_phone_in_an_email_field(production: Any, email_users: None) -> None:
    production.CALLAUTH_SIGNUP = True
    [warning] = all_checks()
    assert warning.id == "callauth.W004"
    assert warning.msg == (
        "CALLAUTH_SIGNUP is on, and the default adapter would store a phone number in EmailUser.email (EmailField)."
    )


def test_w004_not_with_an_adapter_that_makes_usernames(production: Any, email_users: None) -> None:
    production.CALLAUTH_SIGNUP = True
    production.CALLAUTH_ADAPTER = f"{__name__}.EmailAdapter"
    assert all_checks() == []


def test_w004_not_without_signup(production: Any, email_users: None) -> None:
    production.CALLAUTH_SIGNUP = False
    assert all_checks() == []


def test_w004_not_for_djangos_user(production: Any) -> None:
    production.CALLAUTH_SIGNUP = True
    assert all_checks() == []
