"""What a provider's report means for a flow: the one place that decides whether a call confirms it.

A reported caller must equal the requested phone exactly, a provider that vouches for the
caller instead must be the one the flow's phone was given to at start, and the report
must arrive before the flow's deadline (docs/security.rst, invariant 3; docs/providers/
index.rst, "What confirms a call"). A flow stays with the provider that started it: its
checks and webhooks go to the provider named on the flow, whatever ``CALLAUTH_PROVIDER``
says now. Webhooks and callbacks never confirm by themselves (invariant 2).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest
from django.utils import timezone

from .. import signals
from ..conf import app_settings
from ..models import CallAuthFlow, FailureReason, FlowStatus
from ..phones import mask_phone
from ..providers import known_provider_classes
from ..providers.base import CallAuthProvider, CallReport
from ..types import Outcome

logger = logging.getLogger("django_callauth")


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
        expire(flow)


def expire(flow: CallAuthFlow) -> None:
    """Pending → expired once its deadline passed, with the ``flow_failed`` signal."""
    if flow.expire():
        signals.send_robust(signals.flow_failed, flow=flow, reason=FlowStatus.EXPIRED)


class ReportOutcome(Outcome):
    """What a webhook's or callback's report did to its flow (``handle_webhook``, ``handle_callback``), for logs."""

    #: The flow takes no more reports: it has ended, or its time to call is up.
    IGNORED_NOT_PENDING = "ignored: flow is not pending"
    #: The report is about another of the provider's ids than the flow's.
    IGNORED_ID_MISMATCH = "ignored: id mismatch"
    #: The report says no call came (yet).
    IGNORED_NO_CALL = "ignored: no call reported"
    #: The flow is eligible for one ``check`` of our stored id, which decides (``verify_report``).
    ACCEPTED = "accepted: to be verified"
    #: Applied as a check's answer would be (a per-flow webhook without ``CALLAUTH_WEBHOOK_VERIFY``).
    APPLIED = "applied"


def handle_webhook(flow: CallAuthFlow, report: CallReport, provider: CallAuthProvider | None = None) -> ReportOutcome:
    """Take the provider's word that a call came; never logs anyone in (invariant 2).

    With ``CALLAUTH_WEBHOOK_VERIFY`` (the default) the report only makes the flow
    eligible for a ``check`` of *our stored* id (``ACCEPTED``), which the webhook's own
    request then makes (``verify_report``), or else the next status poll or finish.
    Without it, a per-flow webhook
    (whose URL carries the flow's secret) is applied as a check's answer would be;
    ``provider`` is the flow's, needed only then. Returns what happened, for logs.
    """
    # current_status(): a pending flow past its deadline takes no more reports (invariant 3).
    if flow.current_status() != FlowStatus.PENDING:
        return ReportOutcome.IGNORED_NOT_PENDING
    if report.provider_id is not None and report.provider_id != flow.provider_id and flow.provider_id:
        logger.warning("Flow %s: webhook names another provider id", flow.pk)
        return ReportOutcome.IGNORED_ID_MISMATCH
    if not report.called:
        return ReportOutcome.IGNORED_NO_CALL
    caller = confirmed_caller(flow, provider, report) if provider is not None else report.caller
    if app_settings.WEBHOOK_VERIFY or caller is None:
        # Even a report of another phone is verified rather than ignored: only the
        # provider knows this URL's secret, and a confirmed mismatch tells the user
        # at once to call from the right phone, instead of leaving them to time out.
        if flow.webhook_received_at is None:  # else a replay: a per-flow webhook's time is never unset
            flow.note_webhook()
        return ReportOutcome.ACCEPTED
    apply_report(flow, caller, reported_at=timezone.now())
    return ReportOutcome.APPLIED


def handle_callback(flow: CallAuthFlow, report: CallReport) -> ReportOutcome:
    """An account-wide callback's report: at most makes the flow eligible for one ``check``.

    Its URL carries no secret, so anyone could have sent it: it is never applied, whatever
    ``CALLAUTH_WEBHOOK_VERIFY`` says, never moves the deadline, and a check that sees no
    call puts the flow back to waiting (``refresh_flow``; the callback's own request makes
    it, ``verify_report``). Returns what happened, for logs.
    """
    if flow.current_status() != FlowStatus.PENDING:
        return ReportOutcome.IGNORED_NOT_PENDING
    if not report.called:
        return ReportOutcome.IGNORED_NO_CALL
    flow.note_callback()
    return ReportOutcome.ACCEPTED


def simulate_call(call_to: str, caller: str | None = None) -> CallAuthFlow | None:
    """Report a sandbox call to ``call_to`` from ``caller`` (default: the flow's own phone).

    Returns the pending sandbox flow the call reached, or None when no live flow has
    that number (a wrong or late number: nothing is written).
    """
    flow = (
        CallAuthFlow.objects.filter(provider__in=_simulated_providers(), call_to=call_to, status=FlowStatus.PENDING)
        .order_by("-created_at")
        .first()
    )
    if flow is None:
        return None
    apply_report(flow, caller or flow.phone, reported_at=timezone.now())
    return flow


def _simulated_providers() -> list[str]:
    """The names of the known providers that only simulate calls (the sandbox, a project's own)."""
    return [cls.name for cls in known_provider_classes() if cls.simulated]
