"""The telefon-ip.ru "Back Calls" client: its settings, its URLs and what its answers mean.

docs/providers/telefon-ip.rst is the contract: the API and the shapes it is known to answer.
The API token sits in the URL *path*; http.py keeps it out of logs, exception texts and
error reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.debug import sensitive_variables

from ..conf import TIMEOUT, Setting, positive_number, text
from ..guards.redaction import REDACTED
from ..phones import parse_provider_phone
from . import answers, http
from .base import (
    CallAuthProvider,
    CallReport,
    ProviderBalance,
    ProviderConfigurationError,
    ProviderMalformedAnswer,
    ProviderRejected,
    StartedCall,
    WebhookStyle,
)

logger = logging.getLogger("django_callauth")

DEFAULT_URL = "https://api.telefon-ip.ru/api/v1/authcalls/"
#: Its answers name no currency; its prices are in roubles (docs/providers/telefon-ip.rst).
CURRENCY = "RUB"

TOKEN = Setting[str]("TELEFON_IP_TOKEN", "", text(none=True), "Your telefon-ip API token.", secret=True)
URL = Setting[str]("TELEFON_IP_URL", DEFAULT_URL, text(), "The telefon-ip API base.")
TIMEOUT_SETTING = Setting[tuple[float, float]](
    "TELEFON_IP_TIMEOUT", http.DEFAULT_TIMEOUT, TIMEOUT, "Connect and read timeouts of one telefon-ip request."
)
DEADLINE = Setting[float](
    "TELEFON_IP_DEADLINE", http.DEFAULT_DEADLINE, positive_number("seconds"), "Total seconds of one request."
)


def to_provider_format(phone: str) -> str:
    """``+79001234567`` → ``89001234567``, the form telefon-ip asks for."""
    return "8" + phone[2:]


@dataclass(frozen=True)
class _Answer:
    """A classified telefon-ip answer: what every endpoint's JSON has in common."""

    success: bool
    error: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _truthy(value: object) -> bool:
    """telefon-ip's ``success``: ``true``, ``"True"``, ``"true"`` or ``1`` (docs and webhook disagree)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True or (type(value) is int and value == 1)


@sensitive_variables("secrets")
def _classify(status: int, read_body: Callable[[], bytes], where: str, secrets: tuple[str, ...]) -> _Answer:
    """An answer as an ``_Answer``, or the error its HTTP status or its JSON means."""
    answers.classify_status(status, where, "telefon-ip", "API token")
    payload = answers.parse_json(read_body())
    if 400 <= status < 500:
        # A refusal; its JSON (e.g. 400 "id record not found") still tells check it is pending.
        fields = payload if isinstance(payload, dict) else {}
        error = answers.short_text(fields.get("error"), secrets)
        logger.warning("telefon-ip %s: HTTP %s, rejected: %s", where, status, error)
        data = fields.get("data")
        return _Answer(False, error, data if isinstance(data, dict) else {})
    if payload is answers.NOT_JSON:
        logger.warning("telefon-ip %s: HTTP %s, body is not JSON", where, status)
        raise ProviderMalformedAnswer("telefon-ip's answer is not JSON.")
    if not isinstance(payload, dict):
        logger.warning("telefon-ip %s: HTTP %s, JSON is not an object", where, status)
        raise ProviderMalformedAnswer("telefon-ip's answer is not a JSON object.")
    data = payload.get("data")
    return _Answer(
        _truthy(payload.get("success")),
        answers.short_text(payload.get("error"), secrets),
        data if isinstance(data, dict) else {},  # {}, [], null and missing all mean "nothing"
    )


class TelefonIpProvider(CallAuthProvider):
    """Numbers to call and call reports from telefon-ip.ru, over its token-in-path HTTP API."""

    name = "telefon_ip"
    webhook_style = WebhookStyle.PER_FLOW
    lifetime = 120
    required_settings: ClassVar[dict[str, str]] = {"CALLAUTH_TELEFON_IP_TOKEN": "Set the token from telefon-ip.ru"}
    settings = (TOKEN, URL, TIMEOUT_SETTING, DEADLINE)

    @sensitive_variables("token")
    def __init__(self, *, token: str, base_url: str, timeout: tuple[float, float], deadline: float) -> None:
        self._token = token
        self._base_url = base_url
        self._http = http.HttpClient(
            vendor="telefon-ip",
            credential="API token",
            url_setting="CALLAUTH_TELEFON_IP_URL",
            secrets=(token,),
            timeout=timeout,
            deadline=deadline,
        )

    @classmethod
    def from_settings(cls) -> TelefonIpProvider:
        base_url = URL.value()
        return cls(
            token=cls.secrets()[0],
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            timeout=TIMEOUT_SETTING.value(),
            deadline=float(DEADLINE.value()),
        )

    @classmethod
    def secrets(cls) -> Sequence[str]:
        return (TOKEN.value(),)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._base_url}{REDACTED}/>"

    @sensitive_variables("webhook_url", "body")
    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        deadline_at = self._http.deadline_at()
        provider_phone = to_provider_format(phone)
        # Never retried: the provider may have allocated (and billed) a number already.
        if webhook_url:
            body = {"phone": provider_phone, "webhook": webhook_url}
            answer = self._request("POST", "reverse_auth_phone_post", deadline_at, json_body=body)
        else:
            answer = self._request("GET", "reverse_auth_phone_get", deadline_at, params={"phone": provider_phone})
        if not answer.success:
            logger.warning("telefon-ip start: success is false: %s", answer.error)
            raise ProviderRejected(f"telefon-ip refused to start a call: {answer.error or 'no reason given'}")
        # url_link and url_image are deliberately ignored: third-party HTML, possibly another number.
        data = answer.data
        return answers.started_call(
            "telefon-ip", data.get("id"), data.get("auth_phone"), ("id", "auth_phone"), (self._token,)
        )

    def check(self, provider_id: str) -> CallReport:
        if answers.provider_id(provider_id) != provider_id:
            raise ProviderMalformedAnswer("The stored telefon-ip id is not a valid id.")
        deadline_at = self._http.deadline_at()
        path = f"reverse_auth_phone_check/{provider_id}/"
        answer = self._http.retry_once(
            lambda: self._request("GET", path, deadline_at), deadline_at, f"check {provider_id}"
        )
        return self._report(provider_id, answer)

    def balance(self) -> ProviderBalance:
        """``get_balance/``: ``data.balance`` and ``data.price`` (one request's cost), retried once like a check."""
        deadline_at = self._http.deadline_at()
        answer = self._http.retry_once(
            lambda: self._request("GET", "get_balance/", deadline_at), deadline_at, "balance"
        )
        if not answer.success:
            logger.warning("telefon-ip balance: success is false: %s", answer.error)
            raise ProviderRejected(f"telefon-ip refused to tell the balance: {answer.error or 'no reason given'}")
        amount = answers.money(answer.data.get("balance"))
        if amount is None:
            logger.warning("telefon-ip balance: no usable balance in %s", self._shown(answer.data.get("balance")))
            raise ProviderMalformedAnswer("telefon-ip's balance answer has no usable balance.")
        # data.balance_limit is left alone: nothing says whether it is a credit line or an alert level.
        return ProviderBalance(amount, CURRENCY, answers.money(answer.data.get("price")))

    def _report(self, provider_id: str, answer: _Answer) -> CallReport:
        """A check answer as a report: anything short of a clear caller is pending."""
        pending = CallReport(caller=None, provider_id=provider_id)
        if not answer.success:
            logger.debug("telefon-ip check %s: pending (success false: %s)", provider_id, answer.error)
            return pending
        data = answer.data
        if "id" in data and answers.provider_id(data["id"]) != provider_id:
            logger.warning("telefon-ip check %s: answer is about another id, ignored", provider_id)
            return pending
        status = data.get("status")
        # Public integrations know "ok" and "expired"; an unknown status is no confirmation.
        if status is not None and not (isinstance(status, str) and status.lower() == "ok"):
            logger.debug("telefon-ip check %s: pending (status %s)", provider_id, self._shown(status))
            return pending
        caller = parse_provider_phone(data.get("phone"))
        if caller is None:
            if data.get("phone"):
                logger.warning("telefon-ip check %s: phone is not a phone, pending", provider_id)
            else:
                logger.debug("telefon-ip check %s: pending (no phone yet)", provider_id)
            return pending
        logger.info("telefon-ip check %s: a call was reported", provider_id)  # no phone at INFO: personal data
        return CallReport(caller=caller, provider_id=provider_id)

    @sensitive_variables("request")  # its path carries the flow's webhook secret
    def parse_webhook(self, request: HttpRequest) -> CallReport:
        # The provider appends "?success=True&phone=…&id=…" to our URL whatever the method.
        params = _webhook_params(request)
        success = _truthy(params.get("success"))
        caller = parse_provider_phone(params.get("phone")) if success else None
        return CallReport(caller=caller, provider_id=answers.provider_id(params.get("id")))

    def _shown(self, value: object) -> str:
        return answers.short_text(repr(value), (self._token,))

    @sensitive_variables("json_body")
    def _request(
        self,
        method: str,
        path: str,
        deadline_at: float,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, str] | None = None,
    ) -> _Answer:
        """One request, classified; raises only our own exceptions."""
        if not answers.SAFE_SECRET.fullmatch(self._token):
            problem = "is empty" if not self._token else "has characters not allowed in a URL path"
            logger.error("telefon-ip: CALLAUTH_TELEFON_IP_TOKEN %s", problem)
            raise ProviderConfigurationError(
                f"The telefon-ip API token {'is not set' if not self._token else 'has invalid characters'}."
            )
        where = f"{method} {self._base_url}{REDACTED}/{path}"
        # The URL is built inline, so no local variable holding the token outlives this call.
        reply = self._http.request(
            method, f"{self._base_url}{self._token}/{path}", where, deadline_at, params=params, json_body=json_body
        )
        return _classify(reply.status, lambda: reply.body, where, (self._token,))


@sensitive_variables("request")  # its path carries the flow's webhook secret
def _webhook_params(request: HttpRequest) -> QueryDict:
    """The query string when it carries the webhook's fields, else the POST body; junk is "none"."""
    try:
        if any(key in request.GET for key in ("success", "phone", "id")):
            return request.GET
        return request.POST
    except (SuspiciousOperation, BadRequest, MultiPartParserError, OSError, ValueError):
        return QueryDict()
