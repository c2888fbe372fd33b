"""The embedded development provider: no network, calls made by this site.

It hands out a number from the never-assigned +7 999 000 range; a "call" is made by
the ``sandbox_call`` view (a button on the challenge page) or by
``manage.py callauth_simulate_call``, which report it straight to the flow, as a
verified webhook would. A system check forbids it with ``DEBUG = False``.
"""

from __future__ import annotations

import secrets

from .base import CallAuthProvider, CallReport, StartedCall


class SandboxProvider(CallAuthProvider):
    name = "sandbox"
    supports_webhook = False
    simulated = True

    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        number = "+7999000" + f"{secrets.randbelow(10_000):04d}"
        return StartedCall(call_to=number, provider_id="sandbox-" + secrets.token_hex(8))

    def check(self, provider_id: str) -> CallReport:
        # Simulated calls are reported directly to the flow; nothing to ask.
        return CallReport(caller=None, provider_id=provider_id)
