"""The test settings with django-allauth (account and MFA) and the bridge, as docs/howto/allauth.rst says.

``INSTALLED_APPS`` cannot change per test (allauth's tables must exist), so the bridge's
tests (tests/test_contrib_allauth.py) run in a pytest run of their own:
``DJANGO_SETTINGS_MODULE=tests.settings_allauth pytest tests/test_contrib_allauth.py``.
"""

from pathlib import Path

from tests.settings import *  # noqa: F403
from tests.settings import AUTHENTICATION_BACKENDS, INSTALLED_APPS, MIDDLEWARE, TEMPLATES

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # allauth's JSON API beside its pages (HEADLESS_ONLY stays False): an app's session token works on both.
    "allauth.headless",
    "django_callauth.contrib.allauth",
]
MIDDLEWARE = [*MIDDLEWARE, "allauth.account.middleware.AccountMiddleware"]
AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, "allauth.account.auth_backends.AuthenticationBackend"]
ACCOUNT_ADAPTER = "django_callauth.contrib.allauth.adapter.CallAuthAccountAdapter"
ROOT_URLCONF = "tests.urls_allauth"
# The login page's override from the how-to: allauth's page with the phone form under it.
TEMPLATES = [{**TEMPLATES[0], "DIRS": [Path(__file__).resolve().parent / "templates_allauth"]}]
MFA_TRUST_ENABLED = True
