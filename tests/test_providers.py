"""Finding providers (providers/__init__.py): the configured ones, in failover order, and by a flow's name."""

from __future__ import annotations

from typing import Any

from django_callauth.providers import known_provider_classes, provider_named
from django_callauth.providers.sandbox import SandboxProvider
from django_callauth.providers.sms_ru import SmsRuProvider
from django_callauth.providers.smsc import SmscProvider
from django_callauth.providers.telefon_ip import TelefonIpProvider


def test_a_configured_provider_that_cannot_be_imported_is_left_out(settings: Any) -> None:
    # callauth.E002 reports it; the flows of the others still reach their provider meanwhile.
    settings.CALLAUTH_PROVIDER = ["no.such.Provider", "sms_ru"]
    assert known_provider_classes() == [SmsRuProvider, TelefonIpProvider, SmscProvider, SandboxProvider]
    assert isinstance(provider_named("sms_ru"), SmsRuProvider)
    assert provider_named("no.such.Provider") is None
