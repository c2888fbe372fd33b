"""App-store review phones: a login that needs no call, for the phones in ``CALLAUTH_REVIEW_PHONES``.

A store's reviewers cannot call a Russian number, so a start for a listed phone is handed
to this provider instead of the configured ones (flows/start.py): it asks no one, bills
nothing, and shows ``REVIEW_CALL_TO``, a number no phone has. The reviewer's press of "I
have called" confirms the flow with its own phone (flows/refresh.py); nothing else does.
Anyone who knows a listed phone can therefore log in as its account (docs/security.rst).

It is not a ``CALLAUTH_PROVIDER`` choice: no built-in name stands for it, and named by its
dotted path it still starts flows only for listed phones.
"""

from __future__ import annotations

import secrets

from ..conf import app_settings
from .base import CallAuthProvider, CallReport, ProviderConfigurationError, StartedCall

#: What a review flow shows to call: zone +7 has no national number starting with 0 (its
#: numbers start with 3, 4, 8 or 9 in Russia and 6 or 7 in Kazakhstan), so this is no
#: one's phone and a call to it goes nowhere.
REVIEW_CALL_TO = "+70000000000"


def is_review_phone(phone: str) -> bool:
    """Whether ``phone`` (E.164) is in ``CALLAUTH_REVIEW_PHONES`` now."""
    return phone in app_settings.REVIEW_PHONES


class NotAReviewPhone(ProviderConfigurationError):
    """The review provider was asked to start a flow for a phone that is not listed."""


class ReviewProvider(CallAuthProvider):
    name = "review"
    #: Long enough for a reviewer reading instructions; capped by ``CALLAUTH_TTL`` as any provider.
    lifetime = 300

    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        if not is_review_phone(phone):
            raise NotAReviewPhone("The review provider starts flows only for CALLAUTH_REVIEW_PHONES.")
        return StartedCall(call_to=REVIEW_CALL_TO, provider_id="review-" + secrets.token_hex(8))

    def check(self, provider_id: str) -> CallReport:
        # Never asked (refresh_flow confirms review flows on the press); it saw no call.
        return CallReport(caller=None, provider_id=provider_id)
