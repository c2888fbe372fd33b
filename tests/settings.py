"""Test settings: the example site, with every CALLAUTH_* setting pinned.

SQLite by default. Set ``CALLAUTH_TEST_DATABASE_URL`` (e.g.
``postgres://postgres@127.0.0.1:5432/test``) to run the whole suite, race tests
included, on PostgreSQL.
"""

import importlib.util
import os

import django
import environ
from example.settings import *  # noqa: F403

DEBUG = False
SECRET_KEY = "tests-only-secret-key"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
LANGUAGE_CODE = "en"

_database_url = os.environ.get("CALLAUTH_TEST_DATABASE_URL", "")
DATABASES = {"default": environ.Env.db_url_config(_database_url or "sqlite://:memory:")}
DATABASES["default"]["TEST"] = {"NAME": "test_callauth"} if _database_url else {}

# The limits and locks run on Redis when this names one (CI does, on PostgreSQL).
_cache_url = os.environ.get("CALLAUTH_TEST_CACHE_URL", "")
if _cache_url:
    CACHES = {"default": environ.Env.cache_url_config(_cache_url)}

# DRF's token table, for the app clients' token strategies (tests/test_app_clients.py). Only
# when DRF is installed: the lint environment loads these settings without the test extra.
if importlib.util.find_spec("rest_framework") is not None:
    INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken"]  # noqa: F405
# PyJWT warns of an HMAC key under 32 bytes (SECRET_KEY here): SimpleJWT signs with this one.
SIMPLE_JWT = {"SIGNING_KEY": "tests-only-jwt-signing-key-of-at-least-32-bytes"}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

CALLAUTH_PROVIDER = "sandbox"
CALLAUTH_TELEFON_IP_TOKEN = ""
CALLAUTH_TELEFON_IP_URL = "https://api.telefon-ip.ru/api/v1/authcalls/"
CALLAUTH_SMS_RU_API_ID = ""
CALLAUTH_SMS_RU_URL = "https://sms.ru/"
CALLAUTH_SMS_RU_CALLBACK = False
CALLAUTH_WEBHOOK_BASE_URL = ""
CALLAUTH_WEBHOOK_VERIFY = True
CALLAUTH_TTL = 120
CALLAUTH_CHECK_INTERVAL = 3
CALLAUTH_COMPLETE_WINDOW = 300
CALLAUTH_SIGNUP = True
CALLAUTH_ALLOW_STAFF = False
CALLAUTH_ADAPTER = "django_callauth.adapter.CallAuthAdapter"
CALLAUTH_REAUTHENTICATION_TIMEOUT = 300

# The sandbox refuses DEBUG = False (callauth.E001 and at run time); the tests run
# production-like settings on it on purpose, and test the refusal by turning this off.
# One test process: the per-process LocMemCache (callauth.W003) counts the limits right.
SILENCED_SYSTEM_CHECKS = ["callauth.E001", "callauth.W003"]
CALLAUTH_SANDBOX_IN_PRODUCTION = True
CALLAUTH_RATE_LIMITS = {}  # the defaults: tests that hit them say so

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django_callauth": {"level": "DEBUG"}},
}

# Django 6.1 names its mail backends in MAILERS and warns (an error here) when it is missing;
# the test runner's outbox is the backend either way.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
