"""The example site takes every CALLAUTH_* setting and DATABASE_URL from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [
    "CALLAUTH_PROVIDER", "CALLAUTH_TELEFON_IP_TOKEN", "CALLAUTH_TELEFON_IP_URL", "CALLAUTH_TELEFON_IP_TIMEOUT",
    "CALLAUTH_TELEFON_IP_DEADLINE", "CALLAUTH_WEBHOOK_BASE_URL", "CALLAUTH_WEBHOOK_VERIFY", "CALLAUTH_TTL",
    "CALLAUTH_CHECK_INTERVAL", "CALLAUTH_COMPLETE_WINDOW", "CALLAUTH_SIGNUP", "CALLAUTH_ALLOW_STAFF",
    "CALLAUTH_ADAPTER", "CALLAUTH_CLEANUP_AFTER_DAYS", "CALLAUTH_SANDBOX_IN_PRODUCTION",
    "CALLAUTH_TRUSTED_PROXY_COUNT", "CALLAUTH_TRUSTED_CLIENT_IP_HEADER", "CALLAUTH_RATE_LIMITS", "DEBUG",
    "LANGUAGE_CODE", "CALLAUTH_SMS_RU_API_ID", "CALLAUTH_SMS_RU_URL", "CALLAUTH_SMS_RU_CALLBACK",
    "CALLAUTH_REAUTHENTICATION_TIMEOUT", "CALLAUTH_PHONE_MAX_IDLE_DAYS", "CALLAUTH_DEVICE_COOKIE_NAME",
    "CALLAUTH_DEVICE_COOKIE_AGE", "CALLAUTH_LOW_BALANCE",
]  # fmt: skip


def example_settings(**environ: str) -> dict[str, object]:
    """The example settings as a fresh interpreter reads them with ``environ``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLAUTH_") and k != "DATABASE_URL"}
    env.update(environ)
    code = (
        "import json, example.settings as s; "
        f"print(json.dumps({{n: getattr(s, n, 'unset') for n in {SETTINGS!r}}} | {{'DB': s.DATABASES['default'], "
        "'CACHE': s.CACHES['default']}, default=str))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "example_project",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_defaults_are_the_sandbox_with_signup_on_sqlite() -> None:
    settings = example_settings()
    assert settings["CALLAUTH_PROVIDER"] == "sandbox"
    assert settings["DEBUG"] is True  # the sandbox refuses to run without it
    assert settings["CALLAUTH_SIGNUP"] is True
    assert settings["CALLAUTH_TTL"] == "unset"  # each provider's own lifetime
    assert settings["LANGUAGE_CODE"] == "ru"  # Russian unless the browser asks for English
    assert settings["DB"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["CACHE"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def test_a_token_switches_to_telefon_ip_without_debug() -> None:
    settings = example_settings(CALLAUTH_TELEFON_IP_TOKEN="tok")
    assert (settings["CALLAUTH_PROVIDER"], settings["DEBUG"]) == ("telefon_ip", False)


def test_an_sms_ru_api_id_alone_switches_to_sms_ru() -> None:
    settings = example_settings(CALLAUTH_SMS_RU_API_ID="api")
    assert (settings["CALLAUTH_PROVIDER"], settings["DEBUG"]) == ("sms_ru", False)


def test_without_debug_it_never_falls_back_to_the_sandbox() -> None:
    # No token and DEBUG off: the real provider, whose missing token is an error (callauth.E003),
    # never the sandbox that lets anyone log in as anyone.
    settings = example_settings(DEBUG="false")
    assert (settings["CALLAUTH_PROVIDER"], settings["CALLAUTH_SANDBOX_IN_PRODUCTION"]) == ("telefon_ip", False)


def test_every_setting_comes_from_the_environment() -> None:
    settings = example_settings(
        CALLAUTH_PROVIDER="telefon_ip,sms_ru",  # a comma list is a failover list
        CALLAUTH_TELEFON_IP_TOKEN="tok",
        CALLAUTH_TELEFON_IP_URL="http://127.0.0.1:9/api/",
        CALLAUTH_TELEFON_IP_TIMEOUT="1.5,2.5",
        CALLAUTH_TELEFON_IP_DEADLINE="4",
        CALLAUTH_WEBHOOK_BASE_URL="https://site.example",
        CALLAUTH_WEBHOOK_VERIFY="false",
        CALLAUTH_TTL="60",
        CALLAUTH_CHECK_INTERVAL="5",
        CALLAUTH_COMPLETE_WINDOW="90",
        CALLAUTH_SIGNUP="false",
        CALLAUTH_ALLOW_STAFF="true",
        CALLAUTH_ADAPTER="tests.test_adapter.ProjectAdapter",
        CALLAUTH_CLEANUP_AFTER_DAYS="7",
        CALLAUTH_SANDBOX_IN_PRODUCTION="true",
        CALLAUTH_TRUSTED_PROXY_COUNT="2",
        CALLAUTH_TRUSTED_CLIENT_IP_HEADER="X-Real-IP",
        CALLAUTH_RATE_LIMITS='{"ip": "20/m,200/h", "global": null}',
        CALLAUTH_SMS_RU_API_ID="api",
        CALLAUTH_SMS_RU_URL="http://127.0.0.1:9/",
        CALLAUTH_SMS_RU_CALLBACK="true",
        CALLAUTH_REAUTHENTICATION_TIMEOUT="120",
        CALLAUTH_PHONE_MAX_IDLE_DAYS="none",
        CALLAUTH_DEVICE_COOKIE_NAME="returning",
        CALLAUTH_DEVICE_COOKIE_AGE="86400",
        CALLAUTH_LOW_BALANCE='{"telefon_ip": 100}',
        CACHE_URL="redis://127.0.0.1:6379/3",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
    )
    assert {k: v for k, v in settings.items() if k not in ("DB", "CACHE")} == {
        "CALLAUTH_PROVIDER": ["telefon_ip", "sms_ru"],
        "CALLAUTH_TELEFON_IP_TOKEN": "tok",
        "CALLAUTH_TELEFON_IP_URL": "http://127.0.0.1:9/api/",
        "CALLAUTH_TELEFON_IP_TIMEOUT": [1.5, 2.5],
        "CALLAUTH_TELEFON_IP_DEADLINE": 4.0,
        "CALLAUTH_WEBHOOK_BASE_URL": "https://site.example",
        "CALLAUTH_WEBHOOK_VERIFY": False,
        "CALLAUTH_TTL": 60,
        "CALLAUTH_CHECK_INTERVAL": 5,
        "CALLAUTH_COMPLETE_WINDOW": 90,
        "CALLAUTH_SIGNUP": False,
        "CALLAUTH_ALLOW_STAFF": True,
        "CALLAUTH_ADAPTER": "tests.test_adapter.ProjectAdapter",
        "CALLAUTH_CLEANUP_AFTER_DAYS": 7,
        "CALLAUTH_SANDBOX_IN_PRODUCTION": True,
        "CALLAUTH_TRUSTED_PROXY_COUNT": 2,
        "CALLAUTH_TRUSTED_CLIENT_IP_HEADER": "X-Real-IP",
        "CALLAUTH_RATE_LIMITS": {"ip": "20/m,200/h", "global": None},
        "DEBUG": False,
        "LANGUAGE_CODE": "ru",
        "CALLAUTH_SMS_RU_API_ID": "api",
        "CALLAUTH_SMS_RU_URL": "http://127.0.0.1:9/",
        "CALLAUTH_SMS_RU_CALLBACK": True,
        "CALLAUTH_REAUTHENTICATION_TIMEOUT": 120,
        "CALLAUTH_PHONE_MAX_IDLE_DAYS": None,
        "CALLAUTH_DEVICE_COOKIE_NAME": "returning",
        "CALLAUTH_DEVICE_COOKIE_AGE": 86400,
        "CALLAUTH_LOW_BALANCE": {"telefon_ip": 100},
    }
    assert settings["DB"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings["CACHE"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert settings["DB"]["HOST"] == "127.0.0.1"


def test_database_pool_turns_on_psycopgs_pool_for_asgi() -> None:
    """Under ASGI persistent connections pile up (one per request's thread); the pool reuses them."""
    url = "postgres://postgres@127.0.0.1:5432/test"
    assert "pool" not in example_settings(DATABASE_URL=url)["DB"].get("OPTIONS", {})
    assert example_settings(DATABASE_URL=url, DATABASE_POOL="true")["DB"]["OPTIONS"] == {"pool": True}
