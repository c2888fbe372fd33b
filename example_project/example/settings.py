"""Settings of the example site. Everything can come from the environment (django-environ).

With no provider credentials (``CALLAUTH_TELEFON_IP_TOKEN``, ``CALLAUTH_SMS_RU_API_ID``) the
site runs in development: DEBUG on and the sandbox provider, so it works on a laptop with no
provider account. With ``DEBUG=False`` it never falls back to the sandbox: a missing token
is then an error (callauth.E003), not an open door. ``CALLAUTH_PROVIDER=telefon_ip,sms_ru``
is a failover list.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; a missing file is fine

CALLAUTH_TELEFON_IP_TOKEN = env.str("CALLAUTH_TELEFON_IP_TOKEN", default="")
CALLAUTH_SMS_RU_API_ID = env.str("CALLAUTH_SMS_RU_API_ID", default="")
DEBUG = env.bool("DEBUG", default=not (CALLAUTH_TELEFON_IP_TOKEN or CALLAUTH_SMS_RU_API_ID))
_real = "sms_ru" if CALLAUTH_SMS_RU_API_ID and not CALLAUTH_TELEFON_IP_TOKEN else "telefon_ip"
_providers = env.list("CALLAUTH_PROVIDER", default=["sandbox" if DEBUG else _real])
CALLAUTH_PROVIDER = _providers[0] if len(_providers) == 1 else _providers
CALLAUTH_SMS_RU_URL = env.str("CALLAUTH_SMS_RU_URL", default="https://sms.ru/")
CALLAUTH_SMS_RU_CALLBACK = env.bool("CALLAUTH_SMS_RU_CALLBACK", default=False)
CALLAUTH_SANDBOX_IN_PRODUCTION = env.bool("CALLAUTH_SANDBOX_IN_PRODUCTION", default=False)
CALLAUTH_TELEFON_IP_URL = env.str("CALLAUTH_TELEFON_IP_URL", default="https://api.telefon-ip.ru/api/v1/authcalls/")
CALLAUTH_TELEFON_IP_TIMEOUT = env.tuple("CALLAUTH_TELEFON_IP_TIMEOUT", cast=float, default=(3.05, 5.0))
CALLAUTH_TELEFON_IP_DEADLINE = env.float("CALLAUTH_TELEFON_IP_DEADLINE", default=10.0)
CALLAUTH_WEBHOOK_BASE_URL = env.str("CALLAUTH_WEBHOOK_BASE_URL", default="")
CALLAUTH_WEBHOOK_VERIFY = env.bool("CALLAUTH_WEBHOOK_VERIFY", default=True)
if "CALLAUTH_TTL" in os.environ:  # unset: each provider's own lifetime
    CALLAUTH_TTL = env.int("CALLAUTH_TTL")
CALLAUTH_CHECK_INTERVAL = env.int("CALLAUTH_CHECK_INTERVAL", default=3)
CALLAUTH_POLL_INTERVAL = env.float("CALLAUTH_POLL_INTERVAL", default=1.0)
CALLAUTH_COMPLETE_WINDOW = env.int("CALLAUTH_COMPLETE_WINDOW", default=300)
CALLAUTH_SIGNUP = env.bool("CALLAUTH_SIGNUP", default=True)
CALLAUTH_ALLOW_STAFF = env.bool("CALLAUTH_ALLOW_STAFF", default=False)
CALLAUTH_ADAPTER = env.str("CALLAUTH_ADAPTER", default="django_callauth.adapter.CallAuthAdapter")
CALLAUTH_CLEANUP_AFTER_DAYS = env.int("CALLAUTH_CLEANUP_AFTER_DAYS", default=30)
# JSON, since rates contain commas: '{"ip": "20/m,200/h", "global": null}'.
CALLAUTH_RATE_LIMITS = env.json("CALLAUTH_RATE_LIMITS", default={})
CALLAUTH_TRUSTED_PROXY_COUNT = env.int("CALLAUTH_TRUSTED_PROXY_COUNT", default=0)
CALLAUTH_REAUTHENTICATION_TIMEOUT = env.int("CALLAUTH_REAUTHENTICATION_TIMEOUT", default=300)
# "none" turns the dormant-phone rule off.
_idle_days = env.str("CALLAUTH_PHONE_MAX_IDLE_DAYS", default="90")
CALLAUTH_PHONE_MAX_IDLE_DAYS = None if _idle_days.lower() == "none" else int(_idle_days)
CALLAUTH_DEVICE_COOKIE_NAME = env.str("CALLAUTH_DEVICE_COOKIE_NAME", default="callauth_device")
CALLAUTH_DEVICE_COOKIE_AGE = env.int("CALLAUTH_DEVICE_COOKIE_AGE", default=365 * 86400)
# JSON, by provider: '{"telefon_ip": 100}'.
CALLAUTH_LOW_BALANCE = env.json("CALLAUTH_LOW_BALANCE", default={})
CALLAUTH_TRUSTED_CLIENT_IP_HEADER = env.str("CALLAUTH_TRUSTED_CLIENT_IP_HEADER", default="")
# Two bare views under /bench/, the yardsticks of benchmarks/polls.py (example/bench.py).
EXAMPLE_BENCHMARK_VIEWS = env.bool("EXAMPLE_BENCHMARK_VIEWS", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="example-only-insecure-secret-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before django_callauth: its templates/callauth/base.html overrides the app's.
    "example",
    "django_callauth",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "django_callauth.backends.CallAuthBackend",
]

ROOT_URLCONF = "example.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "example.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# PostgreSQL under ASGI: each request's views run in a thread of the request's own, so
# persistent connections (?conn_max_age=…) would leave one open per request until PostgreSQL
# refuses more. A pool (psycopg[pool], Django 5.1+) hands each request one and takes it back.
if env.bool("DATABASE_POOL", default=False):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = True
# The rate limits need a cache every worker shares in production: CACHE_URL=redis://…
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
# "django.contrib.sessions.backends.cached_db": reads from the cache (CACHE_URL), writes
# through to the database; a poll or an events stream's opening then reads no session row.
SESSION_ENGINE = env.str("SESSION_ENGINE", default="django.contrib.sessions.backends.db")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="ru")
LANGUAGES = [("ru", "Русский"), ("en", "English")]
TIME_ZONE = "Europe/Moscow"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_callauth": {"handlers": ["console"], "level": env.str("CALLAUTH_LOG_LEVEL", default="INFO")}},
}
# Django's error reports (the admins' mail) list the request's URL, query string, POST and
# every frame's variables: these hide webhook secrets and phone numbers from them.
DEFAULT_EXCEPTION_REPORTER_FILTER = "django_callauth.reporting.CallAuthExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "django_callauth.reporting.CallAuthExceptionReporter"
