"""The telefon-ip.ru "Back Calls" HTTP client (see docs/providers/telefon-ip.rst for the contract).

The API token sits in the URL path, and ``requests``/``urllib3`` put URLs into their
exception texts and debug logs. So: no frame that raises holds the full URL, every
exception of ours is raised outside ``except`` blocks (no ``__context__`` chaining back to
a ``requests`` error), and what we log names the URL with the token replaced by ``***``.

An exception we do not expect still reaches Django's error report (the admins' email),
which lists every frame's local variables. So every function here that holds the token or
a webhook URL (its path carries the flow's secret) is marked with ``sensitive_variables``,
and ``_send`` hides *all* locals: Django applies a frame's nearest marked caller to it, and
every ``requests``/``urllib3`` frame below ``_send`` holds the full URL.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3.exceptions
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.debug import sensitive_variables

from ..conf import app_settings
from ..phones import parse_provider_phone, to_provider_format
from ..redaction import REDACTED, redact
from .base import (
    CallAuthProvider,
    CallReport,
    ProviderConfigurationError,
    ProviderError,
    ProviderMalformedAnswer,
    ProviderRejected,
    ProviderUnavailable,
    StartedCall,
)

logger = logging.getLogger("django_callauth")

#: No answer of this API is near this size; a larger body is a proxy page or an attack.
MAX_BODY_BYTES = 64 * 1024
_CHUNK_BYTES = 8192
#: The provider's ids are numbers; anything outside this set could walk our URL path.
_PROVIDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: RFC 3986 unreserved characters: a token with others would change the URL, or be
#: percent-encoded in logs where the redaction filter cannot recognise it.
_TOKEN = re.compile(r"[A-Za-z0-9._~-]+")
#: The provider's error text is untrusted: shown only truncated and on one line.
_MAX_ERROR_CHARS = 100
#: A retry of ``check`` needs at least this much of the deadline left to be worth it.
_MIN_RETRY_SECONDS = 0.5
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")

# Module-level so tests can move time without patching the ``time`` module for everyone.
_clock: Callable[[], float] = time.monotonic


class ProviderRateLimited(ProviderUnavailable):
    """HTTP 429: unavailable, but retrying at once would only deepen the problem (and the bill)."""


@dataclass(frozen=True)
class _Answer:
    """A classified provider answer: what every endpoint's JSON has in common."""

    success: bool
    error: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _truthy(value: object) -> bool:
    """The provider's ``success``: ``true``, ``"True"``, ``"true"`` or ``1`` (docs and webhook disagree)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True or (type(value) is int and value == 1)


def _provider_id(value: object) -> str | None:
    """The provider's id as text (it arrives as an int or a string), or None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and _PROVIDER_ID.fullmatch(value):
        return value
    return None


@sensitive_variables("secrets")
def _short_text(value: object, secrets: tuple[str, ...]) -> str:
    """Untrusted provider text fit for one log line or exception message."""
    if not isinstance(value, str):
        return ""
    text = _CONTROL_CHARS.sub(" ", redact(value, secrets)).strip()
    return text if len(text) <= _MAX_ERROR_CHARS else text[:_MAX_ERROR_CHARS] + "…"


def _read_body(response: requests.Response, deadline_at: float, where: str) -> bytes:
    """The body, read as it arrives (``read1``), within the size limit and the total deadline.

    The read timeout bounds each socket read, not the whole body: a server trickling one
    byte a second would never trip it, so the deadline is checked between reads.
    """
    chunks: list[bytes] = []
    size = 0
    failure: ProviderError | None = None
    try:
        while chunk := response.raw.read1(_CHUNK_BYTES, decode_content=True):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                logger.warning("telefon-ip %s: body larger than %s bytes", where, MAX_BODY_BYTES)
                failure = ProviderMalformedAnswer("telefon-ip sent an oversized answer.")
                break
            if _clock() > deadline_at:
                logger.warning("telefon-ip %s: deadline passed while reading the body", where)
                failure = ProviderUnavailable("telefon-ip answered too slowly.")
                break
            chunks.append(chunk)
    except urllib3.exceptions.DecodeError:
        logger.warning("telefon-ip %s: body could not be decompressed", where)
        failure = ProviderMalformedAnswer("telefon-ip sent an undecodable answer.")
    except (urllib3.exceptions.TimeoutError, TimeoutError):
        logger.warning("telefon-ip %s: read timed out in the body", where)
        failure = ProviderUnavailable("telefon-ip stopped answering mid-answer.")
    except (urllib3.exceptions.HTTPError, OSError, ValueError):
        logger.warning("telefon-ip %s: connection broke while reading the body", where)
        failure = ProviderUnavailable("telefon-ip's answer was cut off.")
    if failure is not None:
        raise failure  # outside the except block: no chained requests/urllib3 exception
    return b"".join(chunks)


_NOT_JSON = object()


def _parse_json(body: bytes) -> object:
    """The decoded JSON, or ``_NOT_JSON`` when the body is not JSON at all."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested beyond the stack
        return _NOT_JSON


@sensitive_variables("secrets")
def _classify(status: int, read_body: Callable[[], bytes], where: str, secrets: tuple[str, ...]) -> _Answer:
    """The one place that turns an HTTP answer into an ``_Answer`` or one of our exceptions."""
    if status in (401, 403):
        logger.error("telefon-ip %s: HTTP %s, the token was refused", where, status)
        raise ProviderConfigurationError(f"telefon-ip refused the API token (HTTP {status}).")
    if status == 402:
        logger.error("telefon-ip %s: HTTP 402, payment required", where)
        raise ProviderRejected("telefon-ip asks for payment (HTTP 402).")
    if status == 429:
        logger.warning("telefon-ip %s: HTTP 429, rate limited", where)
        raise ProviderRateLimited("telefon-ip is rate limiting us (HTTP 429).")
    if 500 <= status < 600:
        logger.warning("telefon-ip %s: HTTP %s, server error", where, status)
        raise ProviderUnavailable(f"telefon-ip failed (HTTP {status}).")
    if 300 <= status < 400:
        # Never followed: a redirect would resend the token-bearing request elsewhere.
        logger.warning("telefon-ip %s: HTTP %s redirect, not followed", where, status)
        raise ProviderMalformedAnswer(f"telefon-ip answered with a redirect (HTTP {status}).")
    if not (200 <= status < 300 or 400 <= status < 500):
        logger.warning("telefon-ip %s: unexpected HTTP %s", where, status)
        raise ProviderMalformedAnswer(f"telefon-ip answered HTTP {status}.")
    payload = _parse_json(read_body())
    if 400 <= status < 500:
        # A refusal; its JSON (e.g. 400 "id record not found") still tells check it is pending.
        fields = payload if isinstance(payload, dict) else {}
        error = _short_text(fields.get("error"), secrets)
        logger.warning("telefon-ip %s: HTTP %s, rejected: %s", where, status, error)
        data = fields.get("data")
        return _Answer(False, error, data if isinstance(data, dict) else {})
    if payload is _NOT_JSON:
        logger.warning("telefon-ip %s: HTTP %s, body is not JSON", where, status)
        raise ProviderMalformedAnswer("telefon-ip's answer is not JSON.")
    if not isinstance(payload, dict):
        logger.warning("telefon-ip %s: HTTP %s, JSON is not an object", where, status)
        raise ProviderMalformedAnswer("telefon-ip's answer is not a JSON object.")
    data = payload.get("data")
    return _Answer(
        _truthy(payload.get("success")),
        _short_text(payload.get("error"), secrets),
        data if isinstance(data, dict) else {},  # {}, [], null and missing all mean "nothing"
    )


class TelefonIpProvider(CallAuthProvider):
    """Numbers to call and call reports from telefon-ip.ru, over its token-in-path HTTP API."""

    name = "telefon_ip"
    supports_webhook = True

    @sensitive_variables("token")
    def __init__(self, *, token: str, base_url: str, timeout: tuple[float, float], deadline: float) -> None:
        self._token = token
        self._base_url = base_url
        self._timeout = timeout
        self._deadline = deadline

    @classmethod
    def from_settings(cls) -> TelefonIpProvider:
        return cls(
            token=app_settings.TELEFON_IP_TOKEN,
            base_url=app_settings.TELEFON_IP_URL,
            timeout=app_settings.TELEFON_IP_TIMEOUT,
            deadline=app_settings.TELEFON_IP_DEADLINE,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._base_url}{REDACTED}/>"

    @sensitive_variables("webhook_url")
    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        deadline_at = _clock() + self._deadline
        provider_phone = to_provider_format(phone)
        # Never retried: the provider may have allocated (and billed) a number already.
        if webhook_url:
            answer = self._request(
                "POST",
                "reverse_auth_phone_post",
                deadline_at,
                json_body={"phone": provider_phone, "webhook": webhook_url},
            )
        else:
            answer = self._request("GET", "reverse_auth_phone_get", deadline_at, params={"phone": provider_phone})
        if not answer.success:
            logger.warning("telefon-ip start: success is false: %s", answer.error)
            raise ProviderRejected(f"telefon-ip refused to start a call: {answer.error or 'no reason given'}")
        # url_link and url_image are deliberately ignored: third-party HTML, possibly another number.
        provider_id = _provider_id(answer.data.get("id"))
        if provider_id is None:
            logger.warning(
                "telefon-ip start: id missing or invalid: %s",
                _short_text(repr(answer.data.get("id")), (self._token,)),
            )
            raise ProviderMalformedAnswer("telefon-ip's start answer has no valid id.")
        call_to = parse_provider_phone(answer.data.get("auth_phone"))
        if call_to is None:
            logger.warning(
                "telefon-ip start: auth_phone is not a phone: %s",
                _short_text(repr(answer.data.get("auth_phone")), (self._token,)),
            )
            raise ProviderMalformedAnswer("telefon-ip's start answer has no valid number to call.")
        logger.info("telefon-ip start: id %s, call %s", provider_id, call_to)
        return StartedCall(call_to=call_to, provider_id=provider_id)

    def check(self, provider_id: str) -> CallReport:
        if _provider_id(provider_id) != provider_id:
            raise ProviderMalformedAnswer("The stored telefon-ip id is not a valid id.")
        deadline_at = _clock() + self._deadline
        path = f"reverse_auth_phone_check/{provider_id}/"
        try:
            return self._report(provider_id, self._request("GET", path, deadline_at))
        except ProviderRateLimited:
            raise
        except ProviderUnavailable as exc:
            failure = exc
        # A check is a safe GET: one more try, if the deadline leaves room for it. Retried
        # outside the except block, so a second failure does not chain to the first.
        if deadline_at - _clock() < _MIN_RETRY_SECONDS:
            raise failure
        logger.info("telefon-ip check %s: retrying once", provider_id)
        return self._report(provider_id, self._request("GET", path, deadline_at))

    def _report(self, provider_id: str, answer: _Answer) -> CallReport:
        """A check answer as a report: anything short of a clear caller is pending."""
        pending = CallReport(caller=None, provider_id=provider_id)
        if not answer.success:
            logger.debug("telefon-ip check %s: pending (success false: %s)", provider_id, answer.error)
            return pending
        data = answer.data
        if "id" in data and _provider_id(data["id"]) != provider_id:
            logger.warning("telefon-ip check %s: answer is about another id, ignored", provider_id)
            return pending
        status = data.get("status")
        # Public integrations know "ok" and "expired"; an unknown status is no confirmation.
        if status is not None and not (isinstance(status, str) and status.lower() == "ok"):
            logger.debug(
                "telefon-ip check %s: pending (status %s)",
                provider_id,
                _short_text(repr(status), (self._token,)),
            )
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
        # The provider appends "?success=True&phone=…&id=…" to our URL whatever the method;
        # a POST body is read only when the query string carries none of them.
        params = _webhook_params(request)
        success = _truthy(params.get("success"))
        caller = parse_provider_phone(params.get("phone")) if success else None
        return CallReport(caller=caller, provider_id=_provider_id(params.get("id")))

    @sensitive_variables("secrets", "json_body")
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
        if not self._token:
            logger.error("telefon-ip: CALLAUTH_TELEFON_IP_TOKEN is empty")
            raise ProviderConfigurationError("The telefon-ip API token is not set.")
        if not _TOKEN.fullmatch(self._token):
            logger.error("telefon-ip: CALLAUTH_TELEFON_IP_TOKEN has characters not allowed in a URL path")
            raise ProviderConfigurationError("The telefon-ip API token has invalid characters.")
        where = f"{method} {self._base_url}{REDACTED}/{path}"
        secrets = (self._token,)
        with requests.Session() as session:
            outcome = self._send(session, method, path, deadline_at, where, params, json_body)
            if isinstance(outcome, ProviderError):
                raise outcome
            with outcome:
                return _classify(outcome.status_code, lambda: _read_body(outcome, deadline_at, where), where, secrets)

    @sensitive_variables()  # all: the requests/urllib3 frames below hold the URL in many names
    def _send(
        self,
        session: requests.Session,
        method: str,
        path: str,
        deadline_at: float,
        where: str,
        params: dict[str, str] | None,
        json_body: dict[str, str] | None,
    ) -> requests.Response | ProviderError:
        """The response with its body unread, or the error to raise (returned, never raised here)."""
        remaining = deadline_at - _clock()
        if remaining <= 0:
            logger.warning("telefon-ip %s: no time left before the deadline", where)
            return ProviderUnavailable("telefon-ip request skipped: deadline passed.")
        connect, read = self._timeout
        error: ProviderError
        try:
            # The URL is built inline, so no local variable holding the token outlives this call.
            return session.request(
                method,
                f"{self._base_url}{self._token}/{path}",
                params=params,
                json=json_body,
                timeout=(min(connect, remaining), min(read, remaining)),
                stream=True,
                allow_redirects=False,
            )
        except requests.Timeout:
            reason, error = "timed out", ProviderUnavailable("telefon-ip did not answer in time.")
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ):
            reason, error = (
                "invalid URL",
                ProviderConfigurationError("CALLAUTH_TELEFON_IP_URL is not a valid URL."),
            )
        except requests.ConnectionError:
            reason, error = "connection failed", ProviderUnavailable("telefon-ip cannot be reached.")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
            reason, error = "request failed", ProviderUnavailable("The request to telefon-ip failed.")
        logger.warning("telefon-ip %s: %s", where, reason)
        return error


@sensitive_variables("request")  # its path carries the flow's webhook secret
def _webhook_params(request: HttpRequest) -> QueryDict:
    """The webhook's parameters: the query string, else the POST body, else nothing.

    The provider appends ``?success=…&phone=…&id=…`` to our URL whatever the method, so the
    body counts only when the query string carries none of them. Unparseable input (too
    many fields, broken multipart, bad encodings) means "no parameters", never an error.
    """
    try:
        if any(key in request.GET for key in ("success", "phone", "id")):
            return request.GET
        return request.POST
    except (SuspiciousOperation, BadRequest, MultiPartParserError, OSError, ValueError):
        return QueryDict()
