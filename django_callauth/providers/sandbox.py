"""The embedded development provider: no network, calls made by this site.

It hands out a number from the never-assigned +7 999 000 range; a "call" is made by
the ``sandbox_call`` view (a button on the challenge page) or by
``manage.py callauth_simulate_call``, which report it straight to the flow, as a
verified webhook would. Anyone can therefore log in as anyone: with ``DEBUG = False``
it refuses to start flows at run time (gunicorn and uwsgi never run the system check
callauth.E001), unless ``CALLAUTH_SANDBOX_IN_PRODUCTION`` says so on purpose.
"""

from __future__ import annotations

import logging
import secrets

from django.conf import settings

from .. import errors
from ..conf import app_settings
from .base import CallAuthProvider, CallReport, ProviderConfigurationError, StartedCall

logger = logging.getLogger("django_callauth")


class SandboxDisabled(ProviderConfigurationError):
    """The sandbox was asked to work on a production site (``DEBUG = False``)."""

    error = errors.SANDBOX_DISABLED


def sandbox_refusal() -> SandboxDisabled | None:
    """Why the sandbox must not work now, or None when it may (``DEBUG``, or allowed on purpose)."""
    if settings.DEBUG or app_settings.SANDBOX_IN_PRODUCTION:
        return None
    logger.error(
        "The sandbox provider refused to work: DEBUG is False. Configure a real provider, "
        "or set CALLAUTH_SANDBOX_IN_PRODUCTION = True if anyone may log in as anyone."
    )
    return SandboxDisabled("The sandbox provider is disabled while DEBUG is False.")


class SandboxProvider(CallAuthProvider):
    name = "sandbox"
    simulated = True
    #: Its numbers never stop working; flows last as long as telefon-ip's, like in production.
    lifetime = 120

    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        refusal = sandbox_refusal()
        if refusal is not None:
            raise refusal
        number = "+7999000" + f"{secrets.randbelow(10_000):04d}"
        return StartedCall(call_to=number, provider_id="sandbox-" + secrets.token_hex(8))

    def check(self, provider_id: str) -> CallReport:
        # Simulated calls are reported directly to the flow; nothing to ask.
        return CallReport(caller=None, provider_id=provider_id)
