"""The values the tests share: one name, one value (telefon-ip's own are in provider_answers.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from django_callauth import errors

JSON = {"HTTP_ACCEPT": "application/json"}
PHONE = "+79001234567"
PHONE_FOR_PROVIDER = "89001234567"  # PHONE as telefon-ip writes it
OTHER_PHONE = "+79007654321"
OTHER_PHONE_FOR_PROVIDER = "89007654321"
TYPED_PHONE = "+7 900 123-45-67"  # PHONE, as a person types it

SANDBOX_CALL_TO = "+79990001234"  # the number a flow made by ``FlowFactory`` asks to call

# A clock fixed at T0 (the ``clock`` fixture): 20 s into a minute, one ten-second rate-limit bucket past an edge.
T0 = datetime(2030, 1, 15, 12, 0, 20, tzinfo=timezone.get_fixed_timezone(0))

# The example site's pages, as a person's browser asks for them.
CHALLENGE = "/callauth/challenge/"
SANDBOX_CALL = "/callauth/sandbox/call/"
PHONE_SCREEN: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP_SCREEN: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}


class _Messages(dict[str, Any]):
    """Each code's message as the package words it, read in the active language when used."""

    def __getitem__(self, code: str) -> str:
        return str(super().__getitem__(code))


# What each JSON error code says: taken from errors.py, so a wording change is made once there
# (test_errors.py pins the English, test_locale_ru.py the Russian).
MESSAGES = _Messages(
    no_flow=errors.NO_LOGIN_FLOW.message,
    not_confirmed=errors.NOT_CONFIRMED.message,
    expired=errors.EXPIRED.message,
    already_used=errors.ALREADY_USED.message,
    phone_mismatch=errors.PHONE_MISMATCH.message,
    no_account=errors.NO_ACCOUNT.message,
    invalid_request=errors.BODY_NOT_AN_OBJECT.message,
)
