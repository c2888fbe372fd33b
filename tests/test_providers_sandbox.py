"""The sandbox works in development only: with ``DEBUG = False`` it refuses at run time (invariant 15).

gunicorn and uwsgi never run system checks, so callauth.E001 alone would leave a
production site where anyone logs in as anyone. In development it passes the contract
every provider passes (tests/provider_contract.py).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from django_callauth.models import CallAuthFlow
from django_callauth.providers.sandbox import SandboxProvider
from tests.helpers import JSON, PHONE, assert_json_error, poll, start, url
from tests.provider_contract import ProviderContract


@pytest.fixture
def production(settings: Any) -> Any:
    settings.DEBUG = False
    settings.CALLAUTH_PROVIDER = "sandbox"
    settings.CALLAUTH_SANDBOX_IN_PRODUCTION = False
    return settings


@pytest.mark.django_db
def test_without_debug_the_sandbox_refuses_to_start(
    client: Client, production: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="django_callauth"):
        response = start(client, PHONE)
    assert_json_error(response, 503, "sandbox_disabled")
    assert client.post(url("start"), {"phone": PHONE}).status_code == 503  # the HTML form too
    assert not CallAuthFlow.objects.exclude(status="failed").exists()
    assert "The sandbox provider refused to work: DEBUG is False." in caplog.text


@pytest.mark.django_db
def test_without_debug_no_call_can_be_simulated(client: Client, production: Any) -> None:
    # A flow started while the sandbox was allowed cannot be confirmed once it is not.
    production.CALLAUTH_SANDBOX_IN_PRODUCTION = True
    assert start(client, PHONE).status_code == 201
    production.CALLAUTH_SANDBOX_IN_PRODUCTION = False
    assert_json_error(client.post(url("sandbox_call"), **JSON), 503, "sandbox_disabled")
    assert poll(client) == "pending"


@pytest.mark.django_db
def test_with_debug_the_sandbox_works(client: Client, production: Any) -> None:
    production.DEBUG = True
    assert start(client, PHONE).status_code == 201
    assert client.post(url("sandbox_call"), **JSON).json()["status"] == "confirmed"


@pytest.mark.django_db
def test_allowed_on_purpose_it_works_without_debug(client: Client, production: Any) -> None:
    production.CALLAUTH_SANDBOX_IN_PRODUCTION = True
    assert start(client, PHONE).status_code == 201
    assert client.post(url("sandbox_call"), **JSON).json()["status"] == "confirmed"


class NoPhone:
    """The sandbox's calls are played on the flow (flows.simulate_call), never at a provider."""

    lifetime = 120.0

    def make_call(self, call_to: str, caller: str, *, lose_webhook: bool = False) -> None:
        return None


class TestContract(ProviderContract):
    """The sandbox passes the contract every provider passes (tests/provider_contract.py)."""

    fake = NoPhone()

    @pytest.fixture(autouse=True)
    def _development(self, settings: Any) -> None:
        settings.DEBUG = True

    def make_provider(self) -> SandboxProvider:
        return SandboxProvider.from_settings()
