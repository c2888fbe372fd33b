"""Bringing a pending flow up to date: expire it, or ask its provider when a check is due.

Checks are billed, so they are bounded whatever happens (invariant 8): at most one per
``CALLAUTH_CHECK_INTERVAL``, at most ``max_checks`` per flow, none after the deadline
except a short grace to verify a per-flow webhook that came in time, and "I have called"
worth a bounded few. What a check's answer means is decided in reports.py.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from django.http import HttpRequest
from django.utils import timezone

from ..conf import app_settings
from ..models import CallAuthFlow, FlowPurpose, FlowStatus
from ..phones import mask_phone
from ..providers import provider_named
from ..providers.base import CallAuthProvider, ProviderError
from ..providers.review import ReviewProvider, is_review_phone
from .reports import apply_report, confirmed_caller, expire

logger = logging.getLogger("django_callauth")


def refresh_flow(flow: CallAuthFlow, *, request: HttpRequest | None = None, user_says_called: bool = False) -> None:
    """Bring a pending flow up to date: expire it, or ask the provider when due.

    Status polls land here with the flow as cached (cache.py), so the common case
    touches neither the database nor the provider. Checks are billed, so they are bounded
    whatever happens (invariant 8): at most one per ``CALLAUTH_CHECK_INTERVAL``, at most
    ``max_checks(flow.lifetime)`` per flow, and none after the deadline, except a short
    grace to verify a per-flow webhook that came in time. ``user_says_called``: the person
    pressed "I have called", so in webhook or callback mode a check is made even though no
    report is waiting (it may have been lost), at most ``CALLED_CHECKS`` times per flow.
    """
    if flow.status != FlowStatus.PENDING:
        return
    now = timezone.now()
    deadline = _check_deadline(flow)
    if now >= deadline:
        expire(flow)
        return
    if flow.provider == ReviewProvider.name:
        if user_says_called:
            _confirm_review_flow(flow, request)
        return
    if flow.uses_webhook and flow.webhook_received_at is None and not user_says_called:
        return  # the provider will tell of the call (most polls): nothing to ask, not even who it is
    provider = provider_named(flow.provider)
    if provider is None:
        logger.warning("Flow %s: its provider %r is no longer configured; it cannot be checked", flow.pk, flow.provider)
        return
    if not flow.provider_id or not _needs_check(flow, provider, user_says_called):
        return
    interval = app_settings.CHECK_INTERVAL
    if flow.last_checked_at and now - flow.last_checked_at < timedelta(seconds=interval):
        return
    called_bound = CALLED_CHECKS if _waits(flow, provider) and flow.webhook_received_at is None else None
    if not flow.claim_check(interval, max_checks(flow.lifetime), called_bound=called_bound):
        return
    received_at = flow.webhook_received_at  # as the claim read it: the report this check answers
    try:
        report = provider.check(flow.provider_id)
    except ProviderError as exc:
        # The flow stays pending; the next poll after the interval asks again.
        logger.warning("Flow %s: check failed (%s)", flow.pk, exc.error.code)
        return
    caller = confirmed_caller(flow, provider, report)
    if caller is not None:
        apply_report(flow, caller, reported_at=_webhook_in_time(flow), request=request)
    elif now >= flow.expires_at:
        expire(flow)  # in the grace, the provider says it saw no call: nothing left to wait for
    elif received_at is not None and not flow.uses_webhook:
        # An account-wide callback the provider's own check contradicts: anyone may have
        # sent it, so it costs no more checks; the flow waits again, as before it came.
        logger.info("Flow %s: the check saw no call the callback reported; waiting again", flow.pk)
        flow.forget_callback(received_at)


def verify_report(flow: CallAuthFlow) -> None:
    """Verify a webhook's or callback's report at once, in the provider's own request.

    The check a poll would make next (``refresh_flow``), bounded exactly as there: the
    claim, ``max_checks``, the interval, the grace. So the page's next event or poll
    already says how the call went, and a forged callback costs at most the checks it
    always could. Whatever fails here (the provider down or hanging until its timeout, a
    bug in its parsing, the database) is logged and leaves the flow as the report left it:
    noted, so the next poll or finish asks the provider again. The provider still gets its
    answer: its report is kept, and a 5xx would only make it send the same one again.
    """
    try:
        refresh_flow(flow)
    except Exception:
        logger.exception("Flow %s: verifying its report failed; a poll or the finish checks it", flow.pk)


def _confirm_review_flow(flow: CallAuthFlow, request: HttpRequest | None) -> None:
    """The press of "I have called" on a review flow confirms it with the flow's own phone.

    Only the press: a reviewer cannot call, and a status poll confirming on its own would
    log in whoever merely typed the phone. Only while the phone is still listed, and only a
    login (start_new never makes another review flow): removing a phone from
    ``CALLAUTH_REVIEW_PHONES`` stops its pending flows too.
    """
    if flow.purpose != FlowPurpose.LOGIN or not is_review_phone(flow.phone):
        logger.warning("Flow %s: %s is no review phone now; nothing confirms it", flow.pk, mask_phone(flow.phone))
        return
    logger.warning("Flow %s: review phone %s confirmed without a call", flow.pk, mask_phone(flow.phone))
    apply_report(flow, flow.phone, request=request)


#: After a per-flow webhook that came in time, how long past the deadline a check may still verify it.
VERIFY_GRACE_SECONDS = 15


#: In webhook and callback modes, how many checks "I have called" may ask for per flow while
#: no report is waiting: enough for a lost webhook, not a billed check per press.
CALLED_CHECKS = 3


def max_checks(ttl: int) -> int:
    """The most ``check`` requests a flow living ``ttl`` seconds may ever cost: one per interval, plus one."""
    return math.ceil(ttl / app_settings.CHECK_INTERVAL) + 1


def _check_deadline(flow: CallAuthFlow) -> datetime:
    """Until when the provider may be asked about ``flow``.

    Only a per-flow webhook, whose URL carries the flow's secret, that came in time earns
    the grace: an account-wide callback carries no secret, so anyone could have sent it
    early to stretch the deadline (invariant 3).
    """
    in_grace = _webhook_in_time(flow) is not None
    return flow.expires_at + timedelta(seconds=VERIFY_GRACE_SECONDS if in_grace else 0)


def _webhook_in_time(flow: CallAuthFlow) -> datetime | None:
    """When a per-flow webhook reported a call before the deadline, else None."""
    received_at = flow.webhook_received_at
    if flow.uses_webhook and received_at is not None and received_at < flow.expires_at:
        return received_at
    return None


def _waits(flow: CallAuthFlow, provider: CallAuthProvider) -> bool:
    """Whether the provider tells us of a call (a per-flow webhook, or an account callback the site registered)."""
    return flow.uses_webhook or provider.awaits_callback


def _needs_check(flow: CallAuthFlow, provider: CallAuthProvider, user_says_called: bool) -> bool:
    if provider.simulated:
        return False
    # In webhook mode the provider tells us when a call came; asking before that would only
    # cost money, unless the person says they called and the webhook may be lost. A report
    # is then verified by a check: it never confirms by itself (invariant 2).
    return not _waits(flow, provider) or flow.webhook_received_at is not None or user_says_called
