"""Parse, validate and format Russian phone numbers (pure functions).

Every phone the app stores or compares is canonical E.164: ``+7XXXXXXXXXX``.
Providers answer ``7XXXXXXXXXX``, ``8XXXXXXXXXX`` or ``+7XXXXXXXXXX``, all of which meet
here; the form each provider asks for is its own (providers/*.py).
"""

from __future__ import annotations

import re

from django.utils.translation import gettext_lazy as _

from .errors import ApiError, CallAuthRefusal, ErrorCode

#: Longer input is refused before any parsing (10 KB strings must cost nothing).
MAX_INPUT_LENGTH = 32

# Separators people type between digit groups. Anything else (letters, control
# characters, non-ASCII digits) is refused rather than silently dropped.
_SEPARATORS = re.compile(r"[ \-().\u00a0]")
_ASCII_DIGITS = re.compile(r"\+?[0-9]+")
# National number of a Russian mobile phone: 9XX XXX-XX-XX. Only a mobile can call in to
# log in; this also keeps out Kazakhstan (+7 7XX), toll-free (+7 800) and premium-rate
# (+7 809) numbers that share the +7 country code.
_MOBILE_NATIONAL = re.compile(r"9[0-9]{9}")
# Numbers a provider hands out to call may be any Russian number: mobile, geographic, or a
# non-geographic 8-80X one such as toll-free 8-800 (free for the caller; sms.ru's), but
# never premium-rate 8-803 or 8-809: a user must not be sent to dial one, whatever the
# provider answered.
_ANY_NATIONAL = re.compile(r"(?!80[39])[3489][0-9]{9}")


class InvalidPhoneNumber(CallAuthRefusal, ValueError):
    """The input is not a Russian mobile number; ``message`` says why, for the user.

    A ``ValueError`` too, for code that validated phones before refusals had a base.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, error=ApiError(ErrorCode.INVALID_PHONE, message))
        self.message = message


def _national_number(value: str) -> str | None:
    """The 10-digit national number in ``value``, or None when it has no Russian shape."""
    compact = _SEPARATORS.sub("", value.strip())
    if not _ASCII_DIGITS.fullmatch(compact):
        return None
    if compact.startswith("+"):
        return compact[2:] if compact.startswith("+7") and len(compact) == 12 else None
    if len(compact) == 11 and compact[0] in "78":
        return compact[1:]
    if len(compact) == 10:
        return compact
    return None


def normalize_phone(value: object) -> str:
    """Canonical ``+79XXXXXXXXX`` for a user's mobile phone in any common form.

    Accepts ``+7 900 123-45-67``, ``89001234567``, ``79001234567``, ``9001234567``.
    Raises :class:`InvalidPhoneNumber` with a message fit for the user.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidPhoneNumber(str(_("Enter your mobile phone number.")))
    if len(value) > MAX_INPUT_LENGTH:
        raise InvalidPhoneNumber(str(_("This is too long for a phone number.")))
    national = _national_number(value)
    if national is None:
        raise InvalidPhoneNumber(str(_("Enter a Russian mobile number, for example +7 900 123-45-67.")))
    if not _MOBILE_NATIONAL.fullmatch(national):
        raise InvalidPhoneNumber(str(_("Only Russian mobile numbers (+7 9XX …) can log in by phone call.")))
    return "+7" + national


def parse_provider_phone(value: object) -> str | None:
    """Canonical E.164 for a phone the provider sent (``7…``, ``8…``, ``+7…``), else None.

    Accepts ints too: JSON from the provider may carry numbers unquoted.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if value < 0:  # str() would give "-7…", and "-" is a separator people type
            return None
        value = str(value)
    if not isinstance(value, str) or len(value) > MAX_INPUT_LENGTH:
        return None
    national = _national_number(value)
    if national is None or not _ANY_NATIONAL.fullmatch(national):
        return None
    return "+7" + national


def tel_uri(phone: str) -> str:
    """RFC 3966 ``tel:`` URI of a canonical phone."""
    return "tel:" + phone


def format_phone(phone: str) -> str:
    """``+79001234567`` → ``+7 900 123-45-67`` for display."""
    n = phone[2:]
    return f"+7 {n[0:3]} {n[3:6]}-{n[6:8]}-{n[8:10]}"


def mask_phone(phone: str) -> str:
    """``+79001234567`` → ``+7 900 ***-**-67``: enough to tell numbers apart in a log line.

    Log lines are kept for long and read by many (docs/security.rst, invariant 16); the full
    number lives only in the database. Anything that is not a canonical phone is hidden whole.
    """
    if not (isinstance(phone, str) and len(phone) == 12 and phone.startswith("+7") and phone[2:].isdigit()):
        return "***"
    return f"+7 {phone[2:5]} ***-**-{phone[10:12]}"
