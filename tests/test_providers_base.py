"""What every provider inherits from ``CallAuthProvider`` (providers/base.py) unless it says otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from django_callauth.providers.base import CallReport, WebhookStyle
from django_callauth.providers.sandbox import SandboxProvider


class AccountCallbackProvider(SandboxProvider):
    """A project's provider with an account callback, answering it as the base class does."""

    name = "project_callbacks"
    webhook_style = WebhookStyle.ACCOUNT

    def parse_callback(self, request: HttpRequest) -> list[CallReport]:
        return []


@pytest.mark.django_db
def test_a_callback_is_answered_ok_in_plain_text_unless_the_provider_says_otherwise(settings: Any) -> None:
    settings.CALLAUTH_PROVIDER = f"{__name__}.AccountCallbackProvider"
    response = Client().post(reverse("callauth:callback", kwargs={"provider_name": "project_callbacks"}))
    assert (response.status_code, response.content, response["Content-Type"]) == (200, b"OK", "text/plain")
