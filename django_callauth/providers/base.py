"""The interface every call provider implements, and the errors it may raise.

A provider only talks to the outside world: it hands out a number to call, answers
whether a call was seen, and reads the provider's webhook or callback requests. It also
declares what the rest of the app must know about it (its settings, the secrets to keep
out of logs, how long its numbers live, how it reports calls). Deciding whether a report
confirms a flow (same phone, in time) is done once, in ``flows/reports.py``, for all providers.
docs/writing-a-provider.rst walks through writing one.

Everything here is public and frozen from 0.1.0 (docs/reference/stability.rst): the
dataclasses a provider returns, ``WebhookStyle``, the error classes, and
``CallAuthProvider``'s class attributes and methods. A provider overrides ``start`` and
``check`` (abstract) and whatever else its API needs; every other member has a default
that fits a provider polled by ``check``, so a provider written against 0.1.0 keeps
working when a later release adds a member (with a default, as ``wants_client_ip`` was).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from django.core.checks import CheckMessage
from django.http import HttpRequest, HttpResponse

from .. import errors
from ..conf import Setting
from ..errors import ApiError, CallAuthRefusal


@dataclass(frozen=True)
class StartedCall:
    """What the provider answered to a start request, validated (``providers.answers.started_call``)."""

    #: The number the user must call, canonical E.164 (``phones.parse_provider_phone``).
    call_to: str
    #: The provider's id of this authorisation, as text (letters, digits, ``_``, ``-``; at most 64).
    provider_id: str


@dataclass(frozen=True)
class CallReport:
    """What the provider says about a call to one of its numbers.

    ``caller`` is the caller's phone in E.164 when the provider names it, ``None`` while
    pending or when it does not name callers. ``vouched``: the provider itself says the
    call came from the phone it was given at start (a provider with
    ``vouches_for_caller``; its reports name no caller). ``provider_id`` is the id the
    report is about, when the report carries one.
    """

    #: The caller's phone, E.164, or None (pending, or a provider that names no callers).
    caller: str | None
    #: The provider's id the report is about, when the report carries one.
    provider_id: str | None = None
    #: The provider vouches that the call came from the phone it was given at start.
    vouched: bool = False

    @property
    def called(self) -> bool:
        """Whether the report says a call came at all."""
        return self.caller is not None or self.vouched


@dataclass(frozen=True)
class ProviderBalance:
    """What a provider's account has left, as the provider reports it (``manage.py callauth_providers``)."""

    #: What is left on the account.
    amount: Decimal
    #: The currency of ``amount`` and ``price``, as the provider names it ("RUB").
    currency: str
    #: What one login costs, where the provider says.
    price: Decimal | None = None


class WebhookStyle(enum.Enum):
    """How a provider tells the site that a call came, besides answering ``check``."""

    #: Never: the site asks ``check``.
    NONE = "none"
    #: ``start`` registers a URL of this flow's own, with a secret in its path.
    PER_FLOW = "per_flow"
    #: One callback URL for the whole account, registered with the provider by hand; each
    #: request names the provider's ids. Routed at ``callauth:callback`` with the provider's name.
    ACCOUNT = "account"


class ProviderError(CallAuthRefusal):
    """Base of every provider failure; ``error`` is what the person starting a flow is answered.

    A project's provider raises these (or its own subclasses, with their own ``error``):
    the views answer any ``CallAuthRefusal`` with its ``error``, and a failover list
    reads ``no_call_set_up``. The message (``str(exc)``) is for logs only, and never
    contains a request URL or any other secret-bearing text: a provider's credentials may
    sit in its URLs.
    """

    #: The answer to the person starting a flow; set it on a subclass for another answer
    #: (``errors.PROVIDER_*``), or pass ``error=`` for one instance.
    error: ApiError = errors.PROVIDER_FAILED
    #: The failure proves the provider set up no call (and billed nothing), so a failover
    #: list (``CALLAUTH_PROVIDER`` as a list) may ask the next provider. When in doubt, False.
    no_call_set_up: bool = False

    def __init__(self, *args: object, no_call_set_up: bool | None = None, error: ApiError | None = None) -> None:
        super().__init__(*args, error=error)
        if no_call_set_up is not None:
            self.no_call_set_up = no_call_set_up


class ProviderConfigurationError(ProviderError):
    """The provider refused our credentials or the integration is misconfigured."""

    error = errors.PROVIDER_MISCONFIGURED
    no_call_set_up = True  # refused before anything was set up


class ProviderUnavailable(ProviderError):
    """Timeout, refused connection, 5xx or rate limiting: try again later."""

    error = errors.PROVIDER_NOT_ANSWERING


class ProviderRateLimited(ProviderUnavailable):
    """HTTP 429: unavailable, but retrying at once would only deepen the problem (and the bill)."""

    no_call_set_up = True  # the provider refused to serve the request


class ProviderRejected(ProviderError):
    """The provider answered, but said no (``success`` false, 4xx)."""

    error = errors.PROVIDER_REJECTED


class ProviderMalformedAnswer(ProviderError):
    """The answer could not be understood (not JSON, missing or invalid fields); answered as ProviderError is."""


class CallAuthProvider(ABC):
    """A source of numbers to call and of reports about calls to them."""

    #: Required. Stored on each flow, so the flow's checks and webhooks reach the provider that
    #: started it; also what ``CALLAUTH_PROVIDER`` names for built-in providers. Unique, and
    #: never changed once flows use it.
    name: ClassVar[str] = ""
    #: How the provider tells the site about a call besides ``check``.
    webhook_style: ClassVar[WebhookStyle] = WebhookStyle.NONE
    #: Whether its reports leave out the caller because the provider itself only reports
    #: calls from the phone it was given at start (``CallReport.vouched``).
    vouches_for_caller: ClassVar[bool] = False
    #: Whether calls are simulated by this site (the sandbox) instead of made on a phone.
    simulated: ClassVar[bool] = False
    #: Seconds a number it hands out can be called; ``CALLAUTH_TTL`` is capped by it.
    lifetime: ClassVar[int] = 120
    #: Whether flows wait for its account callback before asking ``check`` (it was registered
    #: with the provider by hand, so a setting of the provider says so). Not a ``ClassVar``:
    #: ``from_settings`` may set it on the instance it builds, from that setting.
    awaits_callback: bool = False
    #: Settings without which it cannot work (system check callauth.E003), with a hint
    #: saying where to get each: ``{"CALLAUTH_X_TOKEN": "Set the token from x.example"}``.
    required_settings: ClassVar[dict[str, str]] = {}
    #: Its own ``CALLAUTH_*`` settings, each declared once with its type and range: system
    #: check callauth.E013 walks them for every configured and built-in provider, and
    #: ``Setting.value()`` refuses a wrong value at run time.
    settings: ClassVar[tuple[Setting[Any], ...]] = ()
    #: Whether ``start`` takes the person's public address as ``client_ip=`` (a keyword
    #: argument providers written before it never accepted, so it is asked for, not sent).
    wants_client_ip: ClassVar[bool] = False

    @classmethod
    def from_settings(cls) -> CallAuthProvider:
        """The provider built from the current settings (read at each use: ``override_settings`` works)."""
        return cls()

    @classmethod
    def secrets(cls) -> Sequence[str]:
        """Values that must never reach a log line, read from the settings now (guards/redaction.py)."""
        return ()

    @classmethod
    def check_settings(cls) -> list[CheckMessage]:
        """System check messages about its own settings beyond ``required_settings`` and their types."""
        return []

    @abstractmethod
    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        """Ask for a number that ``phone`` (E.164) should call.

        With ``webhook_url`` (per-flow providers only) the provider reports the call there;
        without it, the app polls ``check`` (or waits for an account callback). Billed by
        real providers: never retried after it may have reached the provider. A provider
        with ``wants_client_ip`` is also given ``client_ip=``: the person's public address,
        or None when it is unknown, private or loopback.
        """

    @abstractmethod
    def check(self, provider_id: str) -> CallReport:
        """Ask whether a call was made to the number of ``provider_id``.

        Anything that is not a clear report of a call is pending (``called`` false).
        """

    def balance(self) -> ProviderBalance | None:
        """The account's balance, or None where the provider has no balance method; raises
        ProviderError when asked and it fails."""
        return None

    def parse_webhook(self, request: HttpRequest) -> CallReport:
        """Read the provider's per-flow webhook request into a report (untrusted until checked)."""
        raise NotImplementedError(f"{type(self).__name__} has no per-flow webhook")

    def parse_callback(self, request: HttpRequest) -> list[CallReport]:
        """Read the provider's account-wide callback request into reports (never trusted)."""
        raise NotImplementedError(f"{type(self).__name__} has no account callback")

    def callback_response(self) -> HttpResponse:
        """What the provider expects back from a callback it sent, once handled."""
        return HttpResponse("OK", content_type="text/plain")
