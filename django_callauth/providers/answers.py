"""Reading untrusted provider answers: HTTP statuses, ids, texts and JSON, whatever arrives.

Every provider client reads its answers with these, so an HTTP status is classified, and
an id that could walk a URL path, a text that could forge a log line or carry a secret, or
JSON nested past the stack is refused, the same way for all of them.
"""

from __future__ import annotations

import json
import logging
import re
from decimal import Decimal, InvalidOperation

from django.views.decorators.debug import sensitive_variables

from ..guards.redaction import mask_phone_numbers, redact
from ..phones import parse_provider_phone
from .base import (
    ProviderConfigurationError,
    ProviderMalformedAnswer,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    StartedCall,
)

logger = logging.getLogger("django_callauth")

#: Provider ids go into our URLs and the database: anything outside this set could walk a path.
_PROVIDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: RFC 3986 unreserved characters: a secret with others would change the URL, or be
#: percent-encoded in logs where the redaction filter cannot recognise it.
SAFE_SECRET = re.compile(r"[A-Za-z0-9._~-]+")
#: A provider's text is untrusted: shown only truncated and on one line.
_MAX_ERROR_CHARS = 100
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


def provider_id(value: object) -> str | None:
    """A provider's id as text (it arrives as an int or a string), or None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and _PROVIDER_ID.fullmatch(value):
        return value
    return None


@sensitive_variables("secrets")
def short_text(value: object, secrets: tuple[str, ...]) -> str:
    """Untrusted provider text fit for one log line or exception message.

    Phone numbers in it are masked: a provider's error may echo the caller's (invariant 16).
    """
    if not isinstance(value, str):
        return ""
    text = _CONTROL_CHARS.sub(" ", mask_phone_numbers(redact(value, secrets))).strip()
    return text if len(text) <= _MAX_ERROR_CHARS else text[:_MAX_ERROR_CHARS] + "…"


def started_call(
    vendor: str, raw_id: object, raw_number: object, names: tuple[str, str], secrets: tuple[str, ...]
) -> StartedCall:
    """The call a start answer set up: its id and the number to call, both checked.

    ``names`` are the answer's fields for the id and the number, for the log line and the
    error. When either is unusable, what arrived is logged (shortened, without ``secrets``)
    and ``ProviderMalformedAnswer`` raised: no number is ever shown that was not parsed as
    a mobile or toll-free one (``parse_provider_phone`` refuses premium rates).
    """
    id_name, number_name = names
    started_id = provider_id(raw_id)
    if started_id is None:
        logger.warning("%s start: %s missing or invalid: %s", vendor, id_name, short_text(repr(raw_id), secrets))
        raise ProviderMalformedAnswer(f"{vendor}'s start answer has no valid {id_name}.")
    call_to = parse_provider_phone(raw_number)
    if call_to is None:
        shown = short_text(repr(raw_number), secrets)
        logger.warning("%s start: %s is not a number to call: %s", vendor, number_name, shown)
        raise ProviderMalformedAnswer(f"{vendor}'s start answer has no valid number to call.")
    logger.info("%s start: %s %s, call %s", vendor, id_name, started_id, call_to)
    return StartedCall(call_to=call_to, provider_id=started_id)


NOT_JSON = object()


def parse_json(body: bytes) -> object:
    """The decoded JSON, or ``NOT_JSON`` when the body is not JSON at all."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested beyond the stack
        return NOT_JSON


def classify_status(status: int, where: str, vendor: str, credential: str) -> None:
    """Raise for every HTTP status but 2xx and 4xx, whose bodies the provider's client reads."""
    if status in (401, 403):
        logger.error("%s %s: HTTP %s, the token was refused", vendor, where, status)
        raise ProviderConfigurationError(f"{vendor} refused the {credential} (HTTP {status}).")
    if status == 402:
        logger.error("%s %s: HTTP 402, payment required", vendor, where)
        raise ProviderRejected(f"{vendor} asks for payment (HTTP 402).", no_call_set_up=True)
    if status == 429:
        logger.warning("%s %s: HTTP 429, rate limited", vendor, where)
        raise ProviderRateLimited(f"{vendor} is rate limiting us (HTTP 429).")
    if 500 <= status < 600:
        logger.warning("%s %s: HTTP %s, server error", vendor, where, status)
        # 503 says "not now" before doing anything; other 5xx may come after a number was set up.
        raise ProviderUnavailable(f"{vendor} failed (HTTP {status}).", no_call_set_up=status == 503)
    if 300 <= status < 400:
        # Never followed: a redirect would resend the secret-bearing request elsewhere.
        logger.warning("%s %s: HTTP %s redirect, not followed", vendor, where, status)
        raise ProviderMalformedAnswer(f"{vendor} answered with a redirect (HTTP {status}).")
    if not (200 <= status < 300 or 400 <= status < 500):
        logger.warning("%s %s: unexpected HTTP %s", vendor, where, status)
        raise ProviderMalformedAnswer(f"{vendor} answered HTTP {status}.")


def money(value: object) -> Decimal | None:
    """An amount a provider sent as a JSON number or as digits in a string, else None.

    Through ``str``, so ``0.2`` stays 0.2 rather than the float's binary expansion; a bool,
    NaN or infinity is no amount.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None
