"""The sms.ru "callcheck" client: authorisation by a call to a number sms.ru hands out.

``callcheck/add`` gives a number (often a toll-free 8-800 one) for the user to call within
5 minutes; ``callcheck/status`` says 400 (not yet), 401 (confirmed) or 402 (expired or
unknown). sms.ru only confirms a call from the phone it was given, so its answers name no
caller: it vouches (``vouches_for_caller``). It can also tell an account-wide callback URL,
registered by hand in the sms.ru account. docs/providers/sms-ru.rst describes the shapes, and which
of them are only seen in public clients.

Requests are POSTed with the ``api_id`` in the form body, never in the URL, so no URL of
ours carries it; it is still redacted from every log record like any provider secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.debug import sensitive_variables

from ..conf import BOOLEAN, Setting, text
from . import answers, http
from .base import (
    CallAuthProvider,
    CallReport,
    ProviderBalance,
    ProviderConfigurationError,
    ProviderMalformedAnswer,
    ProviderRejected,
    ProviderUnavailable,
    StartedCall,
    WebhookStyle,
)

logger = logging.getLogger("django_callauth")

DEFAULT_URL = "https://sms.ru/"
API_ID = Setting[str]("SMS_RU_API_ID", "", text(none=True), "Your sms.ru api_id.", secret=True)
URL = Setting[str]("SMS_RU_URL", DEFAULT_URL, text(), "The sms.ru API base.")
CALLBACK = Setting[bool](
    "SMS_RU_CALLBACK", False, BOOLEAN, "Your sms.ru account sends its callback to this site: wait for it."
)
#: ``status_code`` of a request that worked, and ``check_status`` of a confirmed call.
OK, CONFIRMED = 100, 401
#: sms.ru's request-level error codes that say something about us rather than this phone.
_CREDENTIALS_REFUSED = {200, 300, 301, 302}  # wrong api_id, token, password, unconfirmed account
_NO_MONEY = 201
_TEMPORARILY_UNAVAILABLE = 220
_SERVER_ERROR = 500
#: A callback carries a few entries; more is not sms.ru, and costs one query each.
MAX_CALLBACK_ENTRIES = 100
_DATA_KEY = re.compile(r"data(?:\[([0-9]{0,6})\])?")


def to_provider_format(phone: str) -> str:
    """``+79001234567`` → ``79001234567``, the form sms.ru asks for."""
    return phone[1:]


def _code(value: object) -> int | None:
    """A status code sent as an int or as digits in a string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


@dataclass(frozen=True)
class _Answer:
    """An sms.ru JSON answer: whether the request worked, its code and text, all its fields."""

    ok: bool
    code: int | None
    text: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


class SmsRuProvider(CallAuthProvider):
    """Numbers to call and confirmations from sms.ru's callcheck API."""

    name = "sms_ru"
    webhook_style = WebhookStyle.ACCOUNT
    vouches_for_caller = True
    lifetime = 300
    required_settings: ClassVar[dict[str, str]] = {"CALLAUTH_SMS_RU_API_ID": "Set the api_id from your sms.ru account"}
    settings = (API_ID, URL, CALLBACK)
    #: sms.ru hands a caller it places abroad an ordinary number rather than a toll-free one.
    wants_client_ip = True

    @sensitive_variables("api_id")
    def __init__(
        self,
        *,
        api_id: str,
        base_url: str = DEFAULT_URL,
        awaits_callback: bool = False,
        timeout: tuple[float, float] = http.DEFAULT_TIMEOUT,
        deadline: float = http.DEFAULT_DEADLINE,
    ) -> None:
        self._api_id = api_id
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.awaits_callback = awaits_callback
        self._http = http.HttpClient(
            vendor="sms.ru",
            credential="api_id",
            url_setting="CALLAUTH_SMS_RU_URL",
            secrets=(api_id,),
            timeout=timeout,
            deadline=deadline,
        )

    @classmethod
    def from_settings(cls) -> SmsRuProvider:
        return cls(
            api_id=cls.secrets()[0],
            base_url=URL.value(),
            awaits_callback=CALLBACK.value(),
        )

    @classmethod
    def secrets(cls) -> Sequence[str]:
        return (API_ID.value(),)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._base_url}>"

    def start(self, phone: str, webhook_url: str | None, *, client_ip: str | None = None) -> StartedCall:
        fields = {"phone": to_provider_format(phone)}
        if client_ip:  # the person's public address (flows/start.py): sms.ru picks a number it can reach
            fields["ip"] = client_ip
        # Never retried: sms.ru may have set up (and billed) the check already.
        answer = self._call("callcheck/add", fields, self._http.deadline_at())
        if not answer.ok:
            logger.warning("sms.ru start: error %s: %s", answer.code, answer.text)
            raise ProviderRejected(f"sms.ru refused to start a call: {answer.text or 'no reason given'}")
        # call_phone_html and call_phone_pretty are ignored: third-party HTML and display text.
        got = answer.fields
        return answers.started_call(
            "sms.ru", got.get("check_id"), got.get("call_phone"), ("check_id", "call_phone"), (self._api_id,)
        )

    def balance(self) -> ProviderBalance:
        """``my/balance``: the account's roubles; sms.ru names no price of one login there."""
        deadline_at = self._http.deadline_at()
        answer = self._http.retry_once(lambda: self._call("my/balance", {}, deadline_at), deadline_at, "balance")
        if not answer.ok:
            logger.warning("sms.ru balance: error %s: %s", answer.code, answer.text)
            raise ProviderRejected(f"sms.ru refused to tell the balance: {answer.text or 'no reason given'}")
        amount = answers.money(answer.fields.get("balance"))
        if amount is None:
            logger.warning("sms.ru balance: the answer has no usable balance")
            raise ProviderMalformedAnswer("sms.ru's balance answer has no usable balance.")
        return ProviderBalance(amount, "RUB")

    def check(self, provider_id: str) -> CallReport:
        if answers.provider_id(provider_id) != provider_id:
            raise ProviderMalformedAnswer("The stored sms.ru check_id is not a valid id.")
        deadline_at = self._http.deadline_at()
        answer = self._http.retry_once(
            lambda: self._call("callcheck/status", {"check_id": provider_id}, deadline_at),
            deadline_at,
            f"check {provider_id}",
        )
        status = _code(answer.fields.get("check_status")) if answer.ok else None
        if status != CONFIRMED:
            # 400 not yet, 402 expired or unknown; anything else is no confirmation either.
            logger.debug("sms.ru check %s: pending (%s)", provider_id, answer.code if not answer.ok else status)
            return CallReport(caller=None, provider_id=provider_id)
        logger.info("sms.ru check %s: the call was confirmed", provider_id)
        return CallReport(caller=None, provider_id=provider_id, vouched=True)

    def parse_callback(self, request: HttpRequest) -> list[CallReport]:
        """The ``callcheck_status`` entries of a callback: ``data[]`` lines kind, id, status, time.

        Entries of other kinds (``sms_status``) and unreadable ones are left out; a body that
        cannot be read at all has none. Reports of other statuses than 401 are not calls. A
        callback whose ``hash`` is wrong has none either; one without a hash is read, as
        unverified as every callback is (flows.handle_callback).
        """
        entries, given_hash = _callback_form(request)
        if not self._hash_holds(entries, given_hash):
            return []
        reports = []
        for entry in entries[:MAX_CALLBACK_ENTRIES]:
            lines = [line.strip() for line in entry.splitlines()]
            if len(lines) < 3 or lines[0] != "callcheck_status":
                continue
            check_id = answers.provider_id(lines[1])
            if check_id is not None:
                reports.append(CallReport(caller=None, provider_id=check_id, vouched=_code(lines[2]) == CONFIRMED))
        return reports

    @sensitive_variables("expected")
    def _hash_holds(self, entries: list[str], given_hash: str) -> bool:
        """Whether a callback's ``hash`` is sha256(api_id + its entries joined), or it sent none.

        Public clients of sms.ru check this (docs/providers/sms-ru.rst). Without a hash the
        callback is as unverified as before; a wrong one was not signed with our ``api_id``.
        """
        if not given_hash:
            logger.debug("sms.ru callback without a hash: unverified")
            return True
        expected = hashlib.sha256((self._api_id + "".join(entries)).encode()).hexdigest()
        if hmac.compare_digest(given_hash.strip().lower().encode(), expected.encode()):
            logger.debug("sms.ru callback: its hash holds")
            return True
        logger.warning("sms.ru callback: its hash is wrong (not signed with our api_id); ignored")
        return False

    def callback_response(self) -> HttpResponse:
        # sms.ru repeats a callback until it is answered "100".
        return HttpResponse("100", content_type="text/plain")

    def _call(self, action: str, fields: dict[str, str], deadline_at: float) -> _Answer:
        """POST ``action`` with the api_id; its answer, or the error every request shares."""
        if not self._api_id:
            logger.error("sms.ru: CALLAUTH_SMS_RU_API_ID is empty")
            raise ProviderConfigurationError("The sms.ru api_id is not set.")
        where = f"POST {self._base_url}{action}"
        reply = self._http.request(
            "POST", self._base_url + action, where, deadline_at, data={"api_id": self._api_id, **fields, "json": "1"}
        )
        answer = self._answer(reply, where)
        _raise_for_account_errors(answer, where)
        return answer

    def _answer(self, reply: http.Reply, where: str) -> _Answer:
        payload = answers.parse_json(reply.body)
        if reply.status >= 400:
            fields = payload if isinstance(payload, dict) else {}
            logger.warning("sms.ru %s: HTTP %s, rejected", where, reply.status)
            text = answers.short_text(fields.get("status_text"), (self._api_id,))
            return _Answer(False, _code(fields.get("status_code")), text)
        if payload is answers.NOT_JSON:
            logger.warning("sms.ru %s: HTTP %s, body is not JSON", where, reply.status)
            raise ProviderMalformedAnswer("sms.ru's answer is not JSON.")
        if not isinstance(payload, dict):
            logger.warning("sms.ru %s: HTTP %s, JSON is not an object", where, reply.status)
            raise ProviderMalformedAnswer("sms.ru's answer is not a JSON object.")
        code = _code(payload.get("status_code"))
        status = payload.get("status")
        ok = isinstance(status, str) and status.strip().upper() == "OK" and code in (OK, None)
        text = answers.short_text(payload.get("status_text"), (self._api_id,))
        return _Answer(ok, code, text, payload)


def _raise_for_account_errors(answer: _Answer, where: str) -> None:
    """Raise for the error codes about our account or sms.ru itself, whatever was asked."""
    if answer.ok:
        return
    if answer.code in _CREDENTIALS_REFUSED:
        logger.error("sms.ru %s: error %s, the api_id was refused", where, answer.code)
        raise ProviderConfigurationError(f"sms.ru refused the api_id (error {answer.code}).")
    if answer.code == _NO_MONEY:
        logger.error("sms.ru %s: error 201, the account has no money left", where)
        raise ProviderRejected("sms.ru asks for payment (error 201).", no_call_set_up=True)
    if answer.code == _TEMPORARILY_UNAVAILABLE:
        logger.warning("sms.ru %s: error 220, temporarily unavailable", where)
        raise ProviderUnavailable("sms.ru is temporarily unavailable (error 220).", no_call_set_up=True)
    if answer.code == _SERVER_ERROR:
        logger.warning("sms.ru %s: error 500, server error", where)
        raise ProviderUnavailable("sms.ru failed (error 500).")


@sensitive_variables("request")
def _callback_form(request: HttpRequest) -> tuple[list[str], str]:
    """The callback's ``data`` entries in order (``data[]``, ``data[0]``, ``data[1]``… or ``data``), and its ``hash``.

    A body that cannot be read has no entries and no hash.
    """
    try:
        form = request.POST
        numbered: list[tuple[int, str]] = []
        for key in form:
            match = _DATA_KEY.fullmatch(key)
            if match:
                index = int(match.group(1)) if match.group(1) else -1
                numbered.extend((index, value) for value in form.getlist(key))
        given_hash = form.get("hash", "")
    except (SuspiciousOperation, BadRequest, MultiPartParserError, OSError, ValueError):
        return [], ""
    return [value for _index, value in sorted(numbered, key=lambda item: item[0]) if isinstance(value, str)], given_hash
