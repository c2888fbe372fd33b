"""The life of a login flow: start, learn about the call, decide.

This is the one place that decides whether a provider's report confirms a flow
(docs/security.rst, invariant 3; docs/providers/index.rst, "What confirms a call"): a reported
caller must equal the requested phone exactly, a provider that vouches for the caller
instead must be the one the flow's phone was given to at start, and the report must arrive
before the flow's deadline. A flow stays with the provider that started it: its checks and
webhooks go to the provider named on the flow, whatever ``CALLAUTH_PROVIDER`` says now.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from django.contrib.auth.signals import user_login_failed
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone

from . import flowcache, signals, starting, throttling
from .conf import app_settings
from .models import CallAuthFlow, FailureReason, FlowPurpose, FlowStatus
from .phones import mask_phone
from .providers import provider_named
from .providers.base import CallAuthProvider, CallReport, ProviderError
from .providers.sandbox import SandboxProvider

logger = logging.getLogger("django_callauth")

SESSION_FLOW_KEY = "_callauth_flow_id"
#: One session key per purpose: a flow adding a phone is never found where a login is looked for.
SESSION_KEYS: dict[str, str] = {FlowPurpose.LOGIN: SESSION_FLOW_KEY, FlowPurpose.LINK: "_callauth_link_flow_id"}
# Starting again with the same phone reuses the live flow (no new billed request)
# while it has at least this many seconds left to make the call.
REUSE_MIN_SECONDS = 20


def flow_from_session(
    session: SessionBase, purpose: str = FlowPurpose.LOGIN, *, cached: bool = False
) -> CallAuthFlow | None:
    """The flow of ``purpose`` this browser started, if any (invariant 1).

    ``cached``: as last stored in the cache, for the pages that only show the state (the
    status poll); whatever decides reads the database.
    """
    flow_id = session.get(SESSION_KEYS[purpose])
    if not isinstance(flow_id, str):
        return None
    if cached:
        flow = flowcache.load(flow_id)
        if flow is not None:
            return flow if flow.purpose == purpose else None
    try:
        flow = CallAuthFlow.objects.filter(pk=flow_id, purpose=purpose).first()
    except ValidationError:  # not a UUID: an old or foreign session value
        return None
    if flow is not None and cached:
        flowcache.fill(flow)
    return flow


def forget_flow(session: SessionBase, purpose: str = FlowPurpose.LOGIN) -> None:
    session.pop(SESSION_KEYS[purpose], None)


def start_flow(
    request: HttpRequest, phone: str, next_url: str = "", *, purpose: str = FlowPurpose.LOGIN
) -> CallAuthFlow:
    """Hand out a number for ``phone`` and bind the flow to this browser's session.

    Reusing this browser's live flow for the same phone costs nothing. Otherwise the
    cost limits are taken first (``throttling.StartRefused``), once however many providers
    of a failover list are asked (starting.py). Raises ``ProviderError`` when no provider
    could start it: the new flow is then marked failed, and the browser keeps the flow it
    had. A flow adding a phone (``FlowPurpose.LINK``) belongs to the logged-in user who
    started it.
    """
    previous = flow_from_session(request.session, purpose)
    if previous is not None and _reusable(request, previous, phone):
        _bind(request, previous)
        return previous
    with throttling.one_start_at_a_time(request):
        throttling.consume_start(request, phone)
        flow = starting.start_new(request, phone, next_url, purpose)
    if previous is not None and previous.status == FlowStatus.PENDING:
        if previous.fail(FailureReason.CANCELLED):
            signals.send_robust(signals.flow_failed, flow=previous, reason=FailureReason.CANCELLED)
    _bind(request, flow)
    signals.send_robust(signals.flow_started, flow=flow, request=request)
    return flow


def _bind(request: HttpRequest, flow: CallAuthFlow) -> None:
    """Put ``flow`` in a session whose key is new, so only this browser holds it (invariant 13).

    A session key planted beforehand (a sibling subdomain's cookie, a shared computer) is
    deleted with its session: its holder can never finish the login this browser started.
    """
    request.session.cycle_key()
    request.session[SESSION_KEYS[flow.purpose]] = str(flow.pk)


def _reusable(request: HttpRequest, flow: CallAuthFlow, phone: str) -> bool:
    return (
        flow.phone == phone
        and (flow.purpose == FlowPurpose.LOGIN or flow.user_id == getattr(request.user, "pk", None))
        and flow.status == FlowStatus.PENDING
        and bool(flow.call_to)
        and flow.expires_in() >= REUSE_MIN_SECONDS
    )


def refresh_flow(flow: CallAuthFlow, *, request: HttpRequest | None = None, user_says_called: bool = False) -> None:
    """Bring a pending flow up to date: expire it, or ask the provider when due.

    Status polls land here with the flow as cached (flowcache.py), so the common case
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
        _expire(flow)
        return
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
        _expire(flow)  # in the grace, the provider says it saw no call: nothing left to wait for
    elif received_at is not None and not flow.uses_webhook:
        # An account-wide callback the provider's own check contradicts: anyone may have
        # sent it, so it costs no more checks; the flow waits again, as before it came.
        logger.info("Flow %s: the check saw no call the callback reported; waiting again", flow.pk)
        flow.forget_callback(received_at)


#: After a per-flow webhook that came in time, how long past the deadline a check may still verify it.
VERIFY_GRACE_SECONDS = 15
#: In webhook and callback modes, how many checks "I have called" may ask for per flow while
#: no report is waiting: enough for a lost webhook, not a billed check per press.
CALLED_CHECKS = 3


def max_checks(ttl: int) -> int:
    """The most ``check`` requests a flow living ``ttl`` seconds may ever cost: one per interval, plus one."""
    return math.ceil(ttl / app_settings.CHECK_INTERVAL) + 1


def confirmed_caller(flow: CallAuthFlow, provider: CallAuthProvider, report: CallReport) -> str | None:
    """The caller ``report`` says called ``flow``'s number, or None when it says no call came.

    A named caller is taken as reported (``apply_report`` compares it with the phone). A
    vouch stands for the flow's phone only from a provider that vouches, that started this
    flow, and so was given exactly this phone at start (``start_new`` passes ``flow.phone``).
    """
    if report.provider_id is not None and report.provider_id != flow.provider_id:
        return None
    if report.caller is not None:
        return report.caller
    if report.vouched and provider.vouches_for_caller and provider.name == flow.provider and flow.provider_id:
        return flow.phone
    return None


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


def apply_report(
    flow: CallAuthFlow, caller: str, *, reported_at: datetime | None = None, request: HttpRequest | None = None
) -> None:
    """Confirm the flow if ``caller`` is exactly its phone and the report is in time."""
    if caller != flow.phone:
        if flow.fail(FailureReason.PHONE_MISMATCH, caller=caller):
            logger.warning(
                "Flow %s: call came from %s, not from %s", flow.pk, mask_phone(caller), mask_phone(flow.phone)
            )
            signals.send_robust(signals.flow_failed, flow=flow, reason=FailureReason.PHONE_MISMATCH)
            # A failed login attempt, for django-axes and the like to count.
            user_login_failed.send(sender=__name__, credentials={"callauth_phone": flow.phone}, request=request)
        return
    if flow.confirm(caller, reported_at=reported_at):
        logger.info("Flow %s confirmed", flow.pk)
        signals.send_robust(signals.flow_confirmed, flow=flow)
    elif flow.status == FlowStatus.PENDING:
        logger.info("Flow %s: call reported after the deadline", flow.pk)
        _expire(flow)


def _expire(flow: CallAuthFlow) -> None:
    if flow.expire():
        signals.send_robust(signals.flow_failed, flow=flow, reason=FlowStatus.EXPIRED)


def handle_webhook(flow: CallAuthFlow, report: CallReport, provider: CallAuthProvider | None = None) -> str:
    """Take the provider's word that a call came; never logs anyone in (invariant 2).

    With ``CALLAUTH_WEBHOOK_VERIFY`` (the default) the report only makes the flow
    eligible for a ``check`` of *our stored* id, done by the next status poll or
    finish, so the provider gets its answer at once. Without it, a per-flow webhook
    (whose URL carries the flow's secret) is applied as a check's answer would be;
    ``provider`` is the flow's, needed only then. Returns what happened, for logs.
    """
    # current_status(): a pending flow past its deadline takes no more reports (invariant 3).
    if flow.current_status() != FlowStatus.PENDING:
        return "ignored: flow is " + flow.current_status()
    if report.provider_id is not None and report.provider_id != flow.provider_id and flow.provider_id:
        logger.warning("Flow %s: webhook names another provider id", flow.pk)
        return "ignored: id mismatch"
    if not report.called:
        return "ignored: no call reported"
    caller = confirmed_caller(flow, provider, report) if provider is not None else report.caller
    if app_settings.WEBHOOK_VERIFY or caller is None:
        # Even a report of another phone is verified rather than ignored: only the
        # provider knows this URL's secret, and a confirmed mismatch tells the user
        # at once to call from the right phone, instead of leaving them to time out.
        flow.note_webhook()
        return "accepted: to be verified"
    apply_report(flow, caller, reported_at=timezone.now())
    return "applied"


def handle_callback(flow: CallAuthFlow, report: CallReport) -> str:
    """An account-wide callback's report: at most makes the flow eligible for one ``check``.

    Its URL carries no secret, so anyone could have sent it: it is never applied, whatever
    ``CALLAUTH_WEBHOOK_VERIFY`` says, never moves the deadline, and a check that sees no
    call puts the flow back to waiting (``refresh_flow``). Returns what happened, for logs.
    """
    if flow.current_status() != FlowStatus.PENDING:
        return "ignored: flow is " + flow.current_status()
    if not report.called:
        return "ignored: no call reported"
    flow.note_callback()
    return "accepted: to be verified"


def simulate_call(call_to: str, caller: str | None = None) -> CallAuthFlow | None:
    """Report a sandbox call to ``call_to`` from ``caller`` (default: the flow's own phone).

    Returns the pending sandbox flow the call reached, or None when no live flow has
    that number (a wrong or late number: nothing is written).
    """
    flow = (
        CallAuthFlow.objects.filter(provider=SandboxProvider.name, call_to=call_to, status=FlowStatus.PENDING)
        .order_by("-created_at")
        .first()
    )
    if flow is None:
        return None
    apply_report(flow, caller or flow.phone, reported_at=timezone.now())
    return flow
