"""The interface every call provider implements, and the errors it may raise.

A provider only talks to the outside world: it hands out a number to call, answers
whether a call was seen, and reads the provider's webhook request. Deciding whether a
report confirms a flow (same phone, in time) is done once, in ``flows.py``, for all
providers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class StartedCall:
    """What the provider answered to a start request, validated."""

    call_to: str  # the number the user must call, canonical E.164
    provider_id: str  # the provider's id of this authorisation, as text


@dataclass(frozen=True)
class CallReport:
    """What the provider says about a call to one of its numbers.

    ``caller`` is the caller's phone in E.164 once a call was seen, ``None`` while pending.
    ``provider_id`` is the id the report is about, when the report carries one.
    """

    caller: str | None
    provider_id: str | None = None


class ProviderError(Exception):
    """Base of every provider failure; ``code`` is the JSON error code shown to clients.

    Messages never contain the request URL: the telefon-ip token lives in its path.
    """

    code = "provider_error"
    http_status = 502
    user_message = _("The phone call service failed. Please try again in a minute.")


class ProviderConfigurationError(ProviderError):
    """The provider refused our credentials or the integration is misconfigured."""

    code = "provider_unavailable"
    http_status = 503
    user_message = _("Login by phone call is temporarily unavailable.")


class ProviderUnavailable(ProviderError):
    """Timeout, refused connection, 5xx or rate limiting: try again later."""

    code = "provider_unavailable"
    http_status = 503
    user_message = _("The phone call service is not answering. Please try again in a minute.")


class ProviderRejected(ProviderError):
    """The provider answered, but said no (``success`` false, 4xx)."""

    code = "provider_rejected"
    http_status = 502
    user_message = _("The phone call service could not give a number for this phone. Please try again later.")


class ProviderMalformedAnswer(ProviderError):
    """The answer could not be understood (not JSON, missing or invalid fields)."""

    code = "provider_error"
    http_status = 502


class CallAuthProvider(ABC):
    """A source of numbers to call and of reports about calls to them."""

    #: Stored on each flow; also what ``CALLAUTH_PROVIDER`` names for built-in providers.
    name: str = ""
    #: Whether ``start`` can register a webhook for the flow.
    supports_webhook: bool = False
    #: Whether calls are simulated by this site (the sandbox) instead of made on a phone.
    simulated: bool = False

    @abstractmethod
    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        """Ask for a number that ``phone`` (E.164) should call.

        With ``webhook_url`` the provider reports the call there; without it, the app
        polls ``check``. Billed by real providers: never retried after it may have
        reached the provider.
        """

    @abstractmethod
    def check(self, provider_id: str) -> CallReport:
        """Ask whether a call was made to the number of ``provider_id``.

        Anything that is not a clear report of a caller is pending (``caller=None``).
        """

    def parse_webhook(self, request: HttpRequest) -> CallReport:
        """Read the provider's webhook request into a report (untrusted until checked)."""
        raise NotImplementedError(f"{type(self).__name__} has no webhook")
