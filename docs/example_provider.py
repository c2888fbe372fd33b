"""A minimal provider, as docs/writing-a-provider.rst explains it: "Example Calls".

Its made-up API: ``POST <base>calls`` with ``{"phone": "+79001234567"}`` answers
``{"id": "c-1", "number": "+74951234567"}``; ``GET <base>calls/<id>`` answers
``{"caller": "+79001234567"}`` once a call came (``null`` before). The key goes in an
``Authorization: Bearer`` header. The contract suite (tests/provider_contract.py) runs it
against a loopback fake (tests/test_example_provider.py), like the built-in providers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from django_callauth.conf import Setting, text
from django_callauth.phones import parse_provider_phone
from django_callauth.providers import answers, http
from django_callauth.providers.base import (
    CallAuthProvider,
    CallReport,
    ProviderConfigurationError,
    ProviderMalformedAnswer,
    ProviderRejected,
    StartedCall,
)

# Each setting declared once: manage.py check (callauth.E013) refuses a value of the wrong type.
KEY = Setting[str]("EXAMPLE_KEY", "", text(none=True), "Your example.com key.", secret=True)
URL = Setting[str]("EXAMPLE_URL", "https://example.com/api/", text(), "The example.com API base.")


class ExampleCallsProvider(CallAuthProvider):
    name = "example_calls"  # stored on each flow: unique, and never changed once in use
    lifetime = 180  # seconds its numbers can be called
    required_settings: ClassVar[dict[str, str]] = {"CALLAUTH_EXAMPLE_KEY": "Set the key from example.com"}
    settings = (KEY, URL)

    def __init__(
        self,
        *,
        key: str,
        base_url: str,
        timeout: tuple[float, float] = http.DEFAULT_TIMEOUT,  # (connect, read) seconds
        deadline: float = http.DEFAULT_DEADLINE,  # seconds for a whole request, body included
    ) -> None:
        self._key = key
        self._base_url = base_url
        self._http = http.HttpClient(
            vendor="Example Calls",
            credential="key",
            url_setting="CALLAUTH_EXAMPLE_URL",
            secrets=(key,),
            timeout=timeout,
            deadline=deadline,
        )

    @classmethod
    def from_settings(cls) -> ExampleCallsProvider:
        return cls(key=cls.secrets()[0], base_url=URL.value())

    @classmethod
    def secrets(cls) -> Sequence[str]:
        return (KEY.value(),)  # redacted from every log record

    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        answer = self._request("POST", "calls", self._http.deadline_at(), {"phone": phone})
        # The id checked for our URLs, the number parsed (never a premium-rate one), or an error.
        return answers.started_call(
            "Example Calls", answer.get("id"), answer.get("number"), ("id", "number"), (self._key,)
        )

    def check(self, provider_id: str) -> CallReport:
        if answers.provider_id(provider_id) != provider_id:
            raise ProviderMalformedAnswer("The stored Example Calls id is not a valid id.")
        deadline_at = self._http.deadline_at()
        answer = self._http.retry_once(  # a check is safe to ask twice; a start never is
            lambda: self._request("GET", f"calls/{provider_id}", deadline_at), deadline_at, provider_id
        )
        # Anything but a clear caller is pending; flows/reports.py compares the caller with the phone.
        return CallReport(caller=parse_provider_phone(answer.get("caller")), provider_id=provider_id)

    def _request(self, method: str, path: str, deadline_at: float, body: Any = None) -> dict[str, Any]:
        if not self._key:
            raise ProviderConfigurationError("The Example Calls key is not set.")
        reply = self._http.request(
            method,
            self._base_url + path,
            f"{method} {self._base_url}{path}",  # what logs show: no secret in it
            deadline_at,
            json_body=body,
            headers={"Authorization": f"Bearer {self._key}"},
        )
        payload = answers.parse_json(reply.body)
        if reply.status >= 400:  # 4xx: a refusal (http.py raised for every other status)
            raise ProviderRejected(f"Example Calls refused the request (HTTP {reply.status}).")
        if not isinstance(payload, dict):
            raise ProviderMalformedAnswer("Example Calls' answer is not a JSON object.")
        return payload
