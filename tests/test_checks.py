"""System checks: each id fires in its situation, and only there."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.checks import ERROR, Error, run_checks
from django.db import models

from django_callauth import checks
from django_callauth.adapter import CallAuthAdapter
from django_callauth.conf import DEFAULT_RATE_LIMITS
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
        *checks.check_setting_values(),
        *checks.check_sandbox_in_production(),
        *checks.check_provider(),
        *checks.check_backend_installed(),
        *checks.check_timings(),
        *checks.check_sessions(),
        *checks.check_rate_limits(),
        *checks.check_client_address(),
        *checks.check_adapter(),
        *checks.check_review_phones(),
        *checks.check_allauth_bridge(),
    ]


def test_a_correct_production_configuration_is_silent(production: Any) -> None:
    assert all_checks() == []
    assert callauth_ids(run_checks()) == []


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(
            {"DEBUG": True, "CALLAUTH_PROVIDER": "sandbox", "CALLAUTH_WEBHOOK_BASE_URL": "http://localhost:8000"}
            | {"CALLAUTH_TELEFON_IP_TOKEN": ""},
            id="sandbox-in-development",
        ),
        pytest.param(
            {"DEBUG": True, "CALLAUTH_WEBHOOK_BASE_URL": "http://localhost:8000"}, id="http-webhook-in-development"
        ),
        *[
            pytest.param({"CALLAUTH_WEBHOOK_BASE_URL": base}, id=f"webhook-base-{base!r}")
            for base in ["", "https://site.example/"]
        ],
        pytest.param(
            {"CALLAUTH_PROVIDER": ["telefon_ip", "sms_ru"], "CALLAUTH_SMS_RU_API_ID": "api-id"},
            id="failover-list-with-its-settings",
        ),
        *[pytest.param({"CALLAUTH_TTL": ttl}, id=f"ttl-{ttl!r}") for ttl in [1, 60, 120, None]],
        pytest.param({"CALLAUTH_TELEFON_IP_TIMEOUT": 5}, id="one-timeout-for-both"),
        pytest.param({"CALLAUTH_TELEFON_IP_TIMEOUT": [2, 4.5]}, id="timeout-pair-as-a-list"),
        pytest.param({"CALLAUTH_TELEFON_IP_TOKEN": "token", "CALLAUTH_SMS_RU_API_ID": None}, id="unused-api-id-none"),
        pytest.param({"SESSION_ENGINE": "django.contrib.sessions.backends.cache"}, id="cache-sessions"),
        pytest.param({"AUTHENTICATION_BACKENDS": ["django_callauth.backends.CallAuthBackend"]}, id="backend-alone"),
        pytest.param({"CALLAUTH_ADAPTER": "tests.test_adapter.ProjectAdapter"}, id="adapter-subclass"),
        pytest.param(
            {"CACHES": DUMMY, "CALLAUTH_RATE_LIMITS": dict.fromkeys(DEFAULT_RATE_LIMITS)},
            id="dummy-cache-with-every-limit-off",
        ),
        pytest.param({"CACHES": LOCMEM, "DEBUG": True}, id="per-process-cache-in-development"),
        pytest.param({"CALLAUTH_SIGNUP": True}, id="signup-with-djangos-user"),
        pytest.param({"CALLAUTH_RATE_LIMITS": dict.fromkeys(DEFAULT_RATE_LIMITS, "5/m")}, id="every-scope-set"),
    ],
)
def test_configurations_that_are_fine_are_silent(production: Any, overrides: dict[str, Any]) -> None:
    for name, value in overrides.items():
        setattr(production, name, value)
    assert all_checks() == []


# -- E001 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "provider",
    [
        "django_callauth.providers.sandbox.SandboxProvider",
        "tests.test_checks.SimulatedProvider",
        ["telefon_ip", "sandbox"],
    ],
    ids=["sandbox-by-path", "project-simulated", "failover-list-ending-in-the-sandbox"],
)
def test_e001_any_simulated_provider_without_debug(production: Any, provider: str | list[str]) -> None:
    production.CALLAUTH_PROVIDER = provider
    assert [m.id for m in checks.check_sandbox_in_production()] == ["callauth.E001"]


def test_e001_names_the_simulated_provider_configured(production: Any) -> None:
    production.CALLAUTH_PROVIDER = ["telefon_ip", "tests.test_checks.SimulatedProvider"]
    [message] = checks.check_sandbox_in_production()
    assert "'dev'" in message.msg
    assert "sandbox" not in message.msg and "telefon_ip" not in message.msg


# -- E002, E003 ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["no.such.Provider", "telefonip"], ids=["missing-module", "name-that-is-no-path"])
def test_e002_provider_cannot_be_imported(production: Any, provider: str) -> None:
    production.CALLAUTH_PROVIDER = provider
    [message] = checks.check_provider()
    assert (type(message), message.id) == (Error, "callauth.E002")
    assert message.msg.startswith(f"CALLAUTH_PROVIDER {provider!r} cannot be imported: ")


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        (
            "tests.test_checks.NotAProvider",
            "CALLAUTH_PROVIDER 'tests.test_checks.NotAProvider' is not a CallAuthProvider subclass",
        ),
        ([], "CALLAUTH_PROVIDER is an empty list."),
    ],
    ids=["not-a-provider-class", "empty-list"],
)
def test_e002_no_provider_to_use(production: Any, provider: str | list[str], message: str) -> None:
    production.CALLAUTH_PROVIDER = provider
    assert checks.check_provider() == [Error(message, id="callauth.E002")]


@pytest.mark.parametrize("provider", ["sandbox", "django_callauth.providers.telefon_ip.TelefonIpProvider"])
def test_e002_not_for_built_in_providers(production: Any, provider: str) -> None:
    production.CALLAUTH_PROVIDER = provider
    assert [m.id for m in checks.check_provider()] == []


@pytest.mark.parametrize(
    ("provider", "empty"),
    [
        ("sms_ru", ["CALLAUTH_SMS_RU_API_ID"]),  # the token of telefon-ip, not configured, is not needed
        (["telefon_ip", "sms_ru"], ["CALLAUTH_TELEFON_IP_TOKEN", "CALLAUTH_SMS_RU_API_ID"]),
    ],
    ids=["the-configured-provider-whatever-it-is", "every-provider-of-a-failover-list"],
)
def test_e003_for_each_configured_provider(production: Any, provider: str | list[str], empty: list[str]) -> None:
    production.CALLAUTH_PROVIDER = provider
    production.CALLAUTH_SMS_RU_API_ID = ""
    production.CALLAUTH_TELEFON_IP_TOKEN = ""
    assert [(m.id, m.msg) for m in checks.check_provider()] == [
        ("callauth.E003", f"{name} is empty.") for name in empty
    ]


# -- W001, E004 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "base", ["https://site.example/?via=callauth", "https://site.example/#hook", "https://site.example?"]
)
def test_e004_webhook_base_with_query_or_fragment(production: Any, base: str) -> None:
    production.CALLAUTH_WEBHOOK_BASE_URL = base
    assert [m.id for m in checks.check_provider()] == ["callauth.E004"]


def test_w001_and_e004_together(production: Any) -> None:
    production.CALLAUTH_WEBHOOK_BASE_URL = "http://site.example/?a=1"
    assert [m.id for m in checks.check_provider()] == ["callauth.W001", "callauth.E004"]


# -- E006, W002 ---------------------------------------------------------------------


def test_e006_one_error_per_bad_setting(production: Any) -> None:
    production.CALLAUTH_TTL = 0
    production.CALLAUTH_COMPLETE_WINDOW = -1
    assert [m.msg for m in checks.check_setting_values()] == [
        "CALLAUTH_TTL must be an int of seconds, at least 1, or None; it is 0.",
        "CALLAUTH_COMPLETE_WINDOW must be an int of seconds, at least 1; it is -1.",
    ]


def test_w002_compares_with_each_providers_own_lifetime(production: Any) -> None:
    production.CALLAUTH_SMS_RU_API_ID = "api-id"
    production.CALLAUTH_TTL = 300
    production.CALLAUTH_PROVIDER = "sms_ru"  # its numbers live 5 minutes
    assert checks.check_timings() == []
    production.CALLAUTH_PROVIDER = ["sms_ru", "telefon_ip"]
    [warning] = checks.check_timings()
    assert (warning.id, warning.msg) == ("callauth.W002", "CALLAUTH_TTL is longer than the provider's 120 seconds.")


def test_w002_not_with_an_e006(production: Any) -> None:
    production.CALLAUTH_TTL = "500"
    assert [m.id for m in all_checks()] == ["callauth.E006"]


# -- E009, W003: where the rate limits are counted; E010: the rates; E011: the client address


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
        ({"session": "5/m"}, "CALLAUTH_RATE_LIMITS has an unknown scope 'session'."),
    ],
)
def test_e010_rate_limits_that_cannot_be_read(production: Any, limits: dict[str, Any], message: str) -> None:
    production.CALLAUTH_RATE_LIMITS = limits
    [error] = all_checks()
    assert (error.id, error.msg) == ("callauth.E010", message)


# -- registration -------------------------------------------------------------------


# Each check id, a situation where it is the only one that fires, and what its message says.
ONE_CHECK_FIRES = [
    ({"CALLAUTH_PROVIDER": "sandbox"}, "callauth.E001", "simulates calls while DEBUG is False: 'sandbox'."),
    ({"CALLAUTH_PROVIDER": "no.such.Provider"}, "callauth.E002", "'no.such.Provider' cannot be imported"),
    ({"CALLAUTH_TELEFON_IP_TOKEN": ""}, "callauth.E003", "CALLAUTH_TELEFON_IP_TOKEN is empty."),
    ({"CALLAUTH_TELEFON_IP_TOKEN": None}, "callauth.E003", "CALLAUTH_TELEFON_IP_TOKEN is empty."),
    ({"CALLAUTH_WEBHOOK_BASE_URL": "https://site.example/?x=1"}, "callauth.E004", "without a query or fragment"),
    (
        {"AUTHENTICATION_BACKENDS": ["django.contrib.auth.backends.ModelBackend"]},
        "callauth.E005",
        "django_callauth.backends.CallAuthBackend is not in AUTHENTICATION_BACKENDS.",
    ),
    ({"CALLAUTH_TTL": 0}, "callauth.E006", "CALLAUTH_TTL must be an int of seconds"),
    ({"CALLAUTH_SIGNUP": "false"}, "callauth.E013", "CALLAUTH_SIGNUP must be "),
    ({"SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies"}, "callauth.E014", "signed_cookies"),
    ({"MIDDLEWARE": []}, "callauth.E007", "needs SessionMiddleware in MIDDLEWARE."),
    ({"CALLAUTH_ADAPTER": "no.such.Adapter"}, "callauth.E008", "'no.such.Adapter' cannot be imported"),
    (
        {"CALLAUTH_ADAPTER": "django_callauth.backends.CallAuthBackend"},
        "callauth.E008",
        "CALLAUTH_ADAPTER 'django_callauth.backends.CallAuthBackend' is not a subclass of CallAuthAdapter.",
    ),
    ({"CACHES": DUMMY}, "callauth.E009", "need a working cache, and CACHES['default'] is a DummyCache."),
    ({"CALLAUTH_CACHE": "limits"}, "callauth.E009", "need a working cache, and CACHES['limits'] is missing."),
    ({"CALLAUTH_RATE_LIMITS": {"ip": "lots"}}, "callauth.E010", "CALLAUTH_RATE_LIMITS['ip'] is not valid"),
    (
        {"CALLAUTH_TRUSTED_PROXY_COUNT": 1, "CALLAUTH_TRUSTED_CLIENT_IP_HEADER": "X-Real-IP"},
        "callauth.E011",
        "CALLAUTH_TRUSTED",
    ),
    (
        {"CALLAUTH_PROVIDER": ["telefon_ip", "telefon_ip"]},
        "callauth.E012",
        "names a provider twice: telefon_ip, telefon_ip.",
    ),
    ({"CACHES": LOCMEM}, "callauth.W003", "multiplied by the number of processes"),
    ({"CALLAUTH_WEBHOOK_BASE_URL": "http://site.example"}, "callauth.W001", "is not https."),
    ({"CALLAUTH_TTL": 121}, "callauth.W002", "CALLAUTH_TTL is longer than the provider's 120 seconds."),
]


@pytest.mark.parametrize(("overrides", "expected", "says"), ONE_CHECK_FIRES, ids=[e for _, e, _ in ONE_CHECK_FIRES])
def test_each_check_fires_alone_in_its_situation(
    production: Any, overrides: dict[str, Any], expected: str, says: str
) -> None:
    for name, value in overrides.items():
        setattr(production, name, value)
    [message] = [m for m in run_checks() if m.id.startswith("callauth.")]
    assert message.id == expected
    assert says in f"{message.msg} {message.hint}"
    assert message.hint is None or message.hint.endswith(".")


def test_sandbox_check_runs_without_deploy_flag(production: Any) -> None:
    # Not a --deploy check: `manage.py check` and `runserver` show it too.
    production.CALLAUTH_PROVIDER = "sandbox"
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
    def username_for_phone(self, request: Any, phone: str) -> str:
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


@pytest.mark.parametrize(
    "overrides",
    [{"CALLAUTH_SIGNUP": True, "CALLAUTH_ADAPTER": f"{__name__}.EmailAdapter"}, {"CALLAUTH_SIGNUP": False}],
    ids=["adapter-that-makes-usernames", "no-signup"],
)
def test_w004_not_when_no_phone_lands_in_the_email_field(
    production: Any, email_users: None, overrides: dict[str, Any]
) -> None:
    for name, value in overrides.items():
        setattr(production, name, value)
    assert all_checks() == []


# -- W006: review phones on a production site ---------------------------------------------------


def test_w006_review_phones_without_debug_are_named_masked(production: Any) -> None:
    production.CALLAUTH_REVIEW_PHONES = ["+79000000001", "+79000000002"]
    [warning] = all_checks()
    assert warning.id == "callauth.W006"
    assert "+7 900 ***-**-01" in warning.msg and "+7 900 ***-**-02" in warning.msg
    assert "+79000000001" not in warning.msg


def test_w006_not_with_debug_nor_an_empty_list(production: Any) -> None:
    production.CALLAUTH_REVIEW_PHONES = []
    assert all_checks() == []
    production.CALLAUTH_REVIEW_PHONES = ["+79000000001"]
    production.DEBUG = True
    assert all_checks() == []


# -- W005: allauth installed without the bridge -------------------------------------------------


def installed_apps(monkeypatch: pytest.MonkeyPatch, *extra: str) -> None:
    """Django's registry answers as if ``extra`` were installed too (the checks ask nothing else)."""
    from django.apps import apps

    really_installed = apps.is_installed
    monkeypatch.setattr(apps, "is_installed", lambda name: name in extra or really_installed(name))


@pytest.mark.parametrize(("apps", "warned"), [((), ["callauth.W005"]), ((checks.ALLAUTH_BRIDGE,), [])])
def test_w005_allauth_without_the_bridge(
    production: Any, monkeypatch: pytest.MonkeyPatch, apps: tuple[str, ...], warned: list[str]
) -> None:
    installed_apps(monkeypatch, "allauth", "allauth.account", *apps)
    assert [m.id for m in all_checks()] == warned
    assert all("MFA" in m.msg for m in all_checks())


# -- E013 (and E006, E011): every documented setting refuses values of the wrong type ------------

SETTINGS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "reference" / "settings.rst"

#: Wrong values for each type the reference states (``*bool*``, ``*int ≥ 1*``, ...), chosen
#: from how settings go wrong: text from the environment, a bool where an int is wanted, 0.
WRONG_VALUES: dict[str, list[Any]] = {
    "bool": ["false", "no", "True", "", 0, 1, None],
    "int": ["5", True, False, 2.5, None, -1],
    "number > 0": ["5", True, 0, -1, math.nan, math.inf, None],
    "number > 0 or (connect, read) pair": ["5", None, True, 0, -1, (3,), (3, 5, 7), (0, 5), ("3", 5), (3, None)],
    "str": [5, None, True, b"text", ["text"]],
    "str or None": [5, True, b"text", ["text"]],
    "str or list of str": [5, None, True, b"telefon_ip", [5], ["sandbox", None], {"sandbox": 1}],
    "dict": ["ip", None, ["ip"], {"ip": 10}, {5: "10/m"}],
    "list of phones": [
        "+79001234567",
        None,
        ("+79001234567", 5),
        ["89001234567"],
        ["+7 900 123-45-67"],
        ["+78001234567"],
    ],
    "dict of str to number ≥ 0": [
        *["sms_ru", None, ["sms_ru"], {5: 100}],
        *[{"sms_ru": value} for value in ("100", True, None, -1, math.nan, math.inf)],
    ],
}


def documented_settings() -> dict[str, tuple[str, str]]:
    """Each ``CALLAUTH_*`` entry of the reference: its stated type and its default's literal."""
    entries = re.findall(
        r"^``(CALLAUTH_\w+)``\n    \*([^*]+)\*[^\n]*?, default ``([^`]+)``", SETTINGS_PAGE.read_text("utf-8"), re.M
    )
    return {name: (kind, default) for name, kind, default in entries}


def wrong_values(kind: str) -> list[Any]:
    """``WRONG_VALUES`` for the stated type; for ``int ≥ N``, N - 1 too, and None unless it is allowed."""
    bounded = re.fullmatch(r"int ≥ (\d+)( or None)?", kind)
    if bounded is None:
        return WRONG_VALUES.get(kind, [])  # an unknown type fails test_the_walk_reads_every_setting...
    below = int(bounded[1]) - 1
    return [v for v in WRONG_VALUES["int"] if not (v is None and bounded[2])] + [below]


DOCUMENTED = documented_settings()
WALK = [(name, value) for name, (kind, _) in DOCUMENTED.items() for value in wrong_values(kind)]


def test_the_walk_reads_every_setting_of_the_reference() -> None:
    named = set(re.findall(r"^``(CALLAUTH_\w+)``$", SETTINGS_PAGE.read_text("utf-8"), re.M))
    assert set(DOCUMENTED) == named
    unknown = {name: kind for name, (kind, _) in DOCUMENTED.items() if not wrong_values(kind)}
    assert unknown == {}, "state each type as one of WRONG_VALUES' (or 'int ≥ N', 'int ≥ N or None')"
    assert {"CALLAUTH_SIGNUP", "CALLAUTH_TELEFON_IP_TIMEOUT", "CALLAUTH_RATE_LIMITS"} <= named


@pytest.mark.parametrize(("name", "value"), WALK, ids=[f"{name}={value!r}" for name, value in WALK])
def test_every_documented_setting_refuses_a_wrong_value(production: Any, name: str, value: Any) -> None:
    setattr(production, name, value)
    errors = [m for m in run_checks() if m.level >= ERROR and m.msg.startswith(f"{name} must be ")]
    assert len(errors) == 1, f"manage.py check accepts {name} = {value!r}"
    assert errors[0].id in {"callauth.E013", "callauth.E006", "callauth.E011"}


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_documented_default_passes(production: Any, name: str) -> None:
    setattr(production, name, ast.literal_eval(DOCUMENTED[name][1]))
    assert [m.msg for m in run_checks() if name in m.msg and m.id != "callauth.E003"] == []


def test_a_wrong_secret_is_named_but_not_shown(production: Any) -> None:
    production.CALLAUTH_TELEFON_IP_TOKEN = b"s3cret-token"
    [error] = checks.check_setting_values()
    assert error.msg == "CALLAUTH_TELEFON_IP_TOKEN must be a str or None; it is a bytes."


def test_a_long_wrong_value_is_shortened(production: Any) -> None:
    production.CALLAUTH_CACHE = ["x" * 200]
    [error] = checks.check_setting_values()
    assert error.msg.startswith("CALLAUTH_CACHE must be a str; it is ['xxx")
    assert len(error.msg) < 140


def test_a_wrong_provider_setting_is_checked_whatever_the_provider(production: Any) -> None:
    production.CALLAUTH_PROVIDER = "telefon_ip"
    production.CALLAUTH_SMS_RU_CALLBACK = "yes"
    assert callauth_ids(run_checks()) == ["callauth.E013"]


def test_a_wrong_provider_setting_leaves_the_builtin_providers_checked(production: Any) -> None:
    production.CALLAUTH_PROVIDER = 5
    production.CALLAUTH_TELEFON_IP_TIMEOUT = "5"
    assert sorted(m.msg.split()[0] for m in run_checks() if m.id.startswith("callauth.")) == [
        "CALLAUTH_PROVIDER",
        "CALLAUTH_TELEFON_IP_TIMEOUT",
    ]
