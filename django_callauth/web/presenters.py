"""What a page or a JSON client is shown of a flow: its payload, its URLs, why it cannot be finished.

Views decide nothing here: they ask ``flows`` what happened, then these turn the flow
into what the person sees, the same way for a login and for a phone being added.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from .. import errors
from ..errors import ApiError, ErrorCode
from ..models import CallAuthFlow, FailureReason, FlowPurpose, FlowStatus
from ..phones import format_phone, tel_uri
from ..providers import provider_named
from .events import offers_push
from .negotiation import error_response
from .qr import qr_data_uri

logger = logging.getLogger("django_callauth")


LOGIN_TEMPLATE = "callauth/login.html"


CHALLENGE_TEMPLATE = "callauth/challenge.html"


#: The URLs that follow a flow, by purpose: logging in, or adding a phone to an account.
FLOW_URLS: dict[str, dict[str, str]] = {
    FlowPurpose.LOGIN: {
        "challenge": "callauth:challenge",
        "status": "callauth:status",
        "events": "callauth:events",
        "complete": "callauth:complete",
        "sandbox_call": "callauth:sandbox_call",
    },
    FlowPurpose.LINK: {
        "challenge": "callauth:link_challenge",
        "status": "callauth:link_status",
        "events": "callauth:link_events",
        "complete": "callauth:link_complete",
        "sandbox_call": "callauth:link_sandbox_call",
    },
}


def flow_payload(request: HttpRequest, flow: CallAuthFlow) -> dict[str, Any]:
    """What a client needs to show the number and follow the flow."""
    urls = FLOW_URLS[flow.purpose]
    payload: dict[str, Any] = {
        "status": flow.current_status(),
        "call_to": flow.call_to,
        "tel_uri": tel_uri(flow.call_to),
        "qr": qr_data_uri(tel_uri(flow.call_to)),
        "expires_at": flow.expires_at.isoformat(),
        "expires_in": flow.expires_in(),
        "status_url": reverse(urls["status"]),
        "complete_url": reverse(urls["complete"]),
    }
    if offers_push(request, flow):
        payload["events_url"] = reverse(urls["events"])
    provider = provider_named(flow.provider)
    if provider is not None and provider.simulated:
        payload["sandbox_call_url"] = reverse(urls["sandbox_call"])
    return payload


def no_flow(request: HttpRequest, purpose: FlowPurpose = FlowPurpose.LOGIN) -> HttpResponse:
    if purpose == FlowPurpose.LINK:
        return error_response(request, errors.NO_LINK_FLOW)
    return error_response(request, errors.NO_LOGIN_FLOW, template=LOGIN_TEMPLATE)


#: Refusals a new number for the same phone would only repeat: an ended flow's page offers none.
_FINAL_REFUSALS = frozenset(
    {ErrorCode.NO_ACCOUNT, ErrorCode.NOT_ALLOWED, ErrorCode.PHONE_TAKEN, ErrorCode.PHONE_DORMANT}
)


def retry_helps(problem: ApiError) -> bool:
    return problem.code not in _FINAL_REFUSALS


def challenge_context(request: HttpRequest, flow: CallAuthFlow) -> dict[str, Any]:
    """What the challenge page shows for ``flow``, live or ended, with or without an error."""
    status = flow.current_status()
    ended = status not in (FlowStatus.PENDING, FlowStatus.CONFIRMED)
    context: dict[str, Any] = {
        "flow": flow,
        "purpose": flow.purpose,
        "status": status,
        "lifetime": flow.lifetime,
        "ended": ended,
        "phone_display": format_phone(flow.phone),
    }
    if flow.call_to:
        context.update(flow_payload(request, flow), call_to_display=format_phone(flow.call_to))
    if ended:
        context["callauth_phone"] = format_phone(flow.phone)  # the form to start again, filled in
    return context


# Why a flow cannot be finished: by its status, and for a failed flow by its failure reason.
_PROBLEM_BY_STATUS: dict[str, ApiError] = {
    FlowStatus.PENDING: errors.NOT_CONFIRMED,
    FlowStatus.EXPIRED: errors.EXPIRED,
    FlowStatus.USED: errors.ALREADY_USED,
}


_PROBLEM_BY_REASON: dict[str, ApiError] = {
    FailureReason.PHONE_MISMATCH: errors.PHONE_MISMATCH,
    FailureReason.NO_ACCOUNT: errors.NO_ACCOUNT,
    FailureReason.NOT_ALLOWED: errors.NOT_ALLOWED,
    FailureReason.CANCELLED: errors.CANCELLED,
    FailureReason.PHONE_TAKEN: errors.PHONE_TAKEN,
    FailureReason.PROVIDER_ERROR: errors.START_FAILED,
    FailureReason.DORMANT: errors.PHONE_DORMANT,
}


# A flow adding a phone logs nobody in: where that changes what happened, it is told so.
_LINK_PROBLEM_BY_STATUS: dict[str, ApiError] = {**_PROBLEM_BY_STATUS, FlowStatus.USED: errors.ALREADY_USED_LINK}


_LINK_PROBLEM_BY_REASON: dict[str, ApiError] = {
    **_PROBLEM_BY_REASON,
    FailureReason.NOT_ALLOWED: errors.NOT_ALLOWED_LINK,
    FailureReason.CANCELLED: errors.CANCELLED_LINK,
}


def flow_problem(flow: CallAuthFlow) -> ApiError:
    """Why ``flow`` cannot be finished; any other state (a failure of an unknown reason) reads as expired."""
    link = flow.purpose == FlowPurpose.LINK
    state = flow.current_status()
    if state == FlowStatus.FAILED:
        by_reason = _LINK_PROBLEM_BY_REASON if link else _PROBLEM_BY_REASON
        return by_reason.get(flow.failure_reason, errors.EXPIRED)
    by_status = _LINK_PROBLEM_BY_STATUS if link else _PROBLEM_BY_STATUS
    return by_status.get(state, errors.EXPIRED)


def challenge_error(request: HttpRequest, flow: CallAuthFlow, error: ApiError) -> HttpResponse:
    """``error`` on the challenge page of ``flow`` (the page says how the flow ended)."""
    context = {**challenge_context(request, flow), "retry": retry_helps(error)}
    return error_response(request, error, template=CHALLENGE_TEMPLATE, context=context)
