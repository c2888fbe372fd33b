"""The login pages and endpoints: start, challenge, status, complete, sandbox call.

Each answers HTML to browsers and JSON to clients that send ``Accept: application/json``.
The flow is always the one in the browser's session (docs/security.rst, invariant 1); no
view here takes a flow id from the request (the provider's webhooks are in webhooks.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.contrib.auth import SESSION_KEY, authenticate, login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_deny
from django.views.decorators.debug import sensitive_post_parameters

from . import devices, errors, flows, formstate, signals
from .adapter import get_adapter
from .errors import ApiError, ErrorCode
from .models import NEXT_URL_MAX_LENGTH, CallAuthFlow, FailureReason, FlowPurpose, FlowStatus
from .negotiation import allow_methods, csrf_protect, error_response, json_server_errors, request_data, wants_json
from .phones import MAX_INPUT_LENGTH, InvalidPhoneNumber, format_phone, normalize_phone, tel_uri
from .providers import get_provider, provider_named
from .providers.base import ProviderError
from .providers.sandbox import sandbox_refusal
from .qr import qr_data_uri
from .throttling import StartRefused

logger = logging.getLogger("django_callauth")

LOGIN_TEMPLATE = "callauth/login.html"
CHALLENGE_TEMPLATE = "callauth/challenge.html"
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(request: HttpRequest, url: object) -> str:
    """``url`` if it is safe to redirect to after login, else "" (invariant 11)."""
    if not isinstance(url, str) or not url:
        return ""
    # A safe URL is percent-encoded; raw control characters (PostgreSQL refuses NUL) or
    # more than the column holds could not even be stored: a 500 instead of a login.
    if len(url) > NEXT_URL_MAX_LENGTH or _CONTROL_CHARS.search(url):
        return ""
    allowed = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if allowed else ""


#: The URLs that follow a flow, by purpose: logging in, or adding a phone to an account.
FLOW_URLS: dict[str, dict[str, str]] = {
    FlowPurpose.LOGIN: {
        "challenge": "callauth:challenge",
        "status": "callauth:status",
        "complete": "callauth:complete",
        "sandbox_call": "callauth:sandbox_call",
    },
    FlowPurpose.LINK: {
        "challenge": "callauth:link_challenge",
        "status": "callauth:link_status",
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
    provider = provider_named(flow.provider)
    if provider is not None and provider.simulated:
        payload["sandbox_call_url"] = reverse(urls["sandbox_call"])
    return payload


def no_flow(request: HttpRequest, purpose: str = FlowPurpose.LOGIN) -> HttpResponse:
    if purpose == FlowPurpose.LINK:
        return error_response(request, errors.NO_LINK_FLOW)
    return error_response(request, errors.NO_LOGIN_FLOW, template=LOGIN_TEMPLATE)


@sensitive_post_parameters("phone")
@xframe_options_deny
@json_server_errors
@allow_methods("POST")
@csrf_protect
@transaction.non_atomic_requests
def start(request: HttpRequest) -> HttpResponse:
    data = request_data(request)
    if data is None:
        return error_response(request, errors.BODY_NOT_AN_OBJECT)
    next_url = safe_next(request, data.get("next"))
    raw_phone = data.get("phone")
    # Kept in the session and shown again as typed, but never more than the field holds: an
    # anonymous client could otherwise store megabytes per request, before any limit.
    typed = raw_phone[:MAX_INPUT_LENGTH] if isinstance(raw_phone, str) else ""
    form_context = {"callauth_phone": typed, "next": next_url}
    # The project's page the form was sent from (same host only, as next), to show a refusal there.
    from_page = safe_next(request, data.get("from"))

    def refused(error: ApiError) -> HttpResponse:
        if from_page and not wants_json(request):
            kept = formstate.KeptForm(from_page, typed, error.code.value, str(error.message))
            formstate.keep(request.session, kept)
            return redirect(from_page)
        return error_response(request, error, template=LOGIN_TEMPLATE, context=form_context)

    try:
        flow = flows.start_flow(request, normalize_phone(raw_phone), next_url)
    except (InvalidPhoneNumber, StartRefused, ProviderError) as exc:
        return refused(exc.error)
    if wants_json(request):
        return JsonResponse(flow_payload(request, flow), status=201)
    return redirect("callauth:challenge")


@xframe_options_deny
@json_server_errors
@allow_methods("GET")
@never_cache
@transaction.non_atomic_requests
def challenge(request: HttpRequest, purpose: str = FlowPurpose.LOGIN) -> HttpResponse:
    flow = flows.flow_from_session(request.session, purpose)
    if flow is None or not flow.call_to:
        return no_flow(request, purpose)
    flows.refresh_flow(flow, request=request)
    if wants_json(request):
        return JsonResponse(flow_payload(request, flow))
    context = _challenge_context(request, flow)
    if context["ended"]:
        # The page's script reloads it when a flow ends: say exactly why it ended.
        problem = flow_problem(flow)
        context.update(error_code=problem.code.value, error_message=problem.message, retry=_retry_helps(problem))
    return render(request, CHALLENGE_TEMPLATE, context)


#: Refusals a new number for the same phone would only repeat: an ended flow's page offers none.
_FINAL_REFUSALS = frozenset(
    {ErrorCode.NO_ACCOUNT, ErrorCode.NOT_ALLOWED, ErrorCode.PHONE_TAKEN, ErrorCode.PHONE_DORMANT}
)


def _retry_helps(problem: ApiError) -> bool:
    return problem.code not in _FINAL_REFUSALS


def _challenge_context(request: HttpRequest, flow: CallAuthFlow) -> dict[str, Any]:
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


@xframe_options_deny
@json_server_errors
@allow_methods("GET")
@never_cache
@transaction.non_atomic_requests
def status(request: HttpRequest, purpose: str = FlowPurpose.LOGIN) -> HttpResponse:
    flow = flows.flow_from_session(request.session, purpose, cached=True)
    if flow is None:
        return no_flow(request, purpose)
    flows.refresh_flow(flow, request=request)
    if not wants_json(request):
        return redirect(FLOW_URLS[purpose]["challenge"])
    return JsonResponse({"status": flow.current_status(), "expires_in": flow.expires_in()})


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


@xframe_options_deny
@json_server_errors
@allow_methods("POST")
@csrf_protect
@never_cache
@transaction.non_atomic_requests
def complete(request: HttpRequest) -> HttpResponse:
    flow = flows.flow_from_session(request.session)
    if flow is None:
        return no_flow(request)
    # Pressing "I have called" is worth one check even in webhook mode: the webhook may be lost.
    flows.refresh_flow(flow, request=request, user_says_called=True)
    if flow.current_status() == FlowStatus.CONFIRMED:
        try:
            user = authenticate(request, callauth_flow=flow)
        except Exception:
            # Project code (the adapter) failed inside the backend's transaction: the claim was
            # rolled back, so the flow is still confirmed and the person can simply try again.
            logger.exception("Flow %s: logging in failed in project code; the flow can be finished again", flow.pk)
            return error_response(request, errors.LOGIN_FAILED)
        if user is not None:
            return _logged_in(request, flow, user)
        flow.refresh_from_db()
        if flow.status == FlowStatus.CONFIRMED:
            logger.error("Flow %s is confirmed but no backend authenticated it: is CallAuthBackend installed?", flow.pk)
            return error_response(request, errors.MISCONFIGURED)
    return challenge_error(request, flow, flow_problem(flow))


def _logged_in(request: HttpRequest, flow: CallAuthFlow, user: Any) -> HttpResponse:
    """``login()`` and what follows; project code failing here never loses the login (invariant 14).

    The flow is used by now. A 5xx answer would not save the rotated session
    (SessionMiddleware skips it), so whatever a receiver raises is logged, and the person
    lands logged in as long as the session holds the user.
    """
    try:
        login(request, user)
    except Exception:
        # user_logged_in is sent last by login(): the session is usually complete already.
        logger.exception("Flow %s: a receiver of user_logged_in failed", flow.pk)
    if request.session.get(SESSION_KEY) != user._meta.pk.value_to_string(user):
        logger.error("Flow %s: the login could not be stored in the session", flow.pk)
        return error_response(request, errors.LOGIN_FAILED)
    flows.forget_flow(request.session)
    signals.send_robust(signals.logged_in, flow=flow, request=request, user=user)
    try:
        target = safe_next(request, flow.next_url) or get_adapter().get_login_redirect_url(request)
    except Exception:
        logger.exception("Flow %s: the adapter's login redirect failed; sending the user to /", flow.pk)
        target = "/"
    response = JsonResponse({"redirect": target}) if wants_json(request) else redirect(target)
    devices.remember(request, response, flow.phone)  # this browser proved the phone: its own allowance
    return response


def challenge_error(request: HttpRequest, flow: CallAuthFlow, error: ApiError) -> HttpResponse:
    """``error`` on the challenge page of ``flow`` (the page says how the flow ended)."""
    context = {**_challenge_context(request, flow), "retry": _retry_helps(error)}
    return error_response(request, error, template=CHALLENGE_TEMPLATE, context=context)


@sensitive_post_parameters("caller")
@xframe_options_deny
@json_server_errors
@allow_methods("POST")
@csrf_protect
@transaction.non_atomic_requests
def sandbox_call(request: HttpRequest, purpose: str = FlowPurpose.LOGIN) -> HttpResponse:
    """Play the phone: report a call to this browser's number (sandbox flows only)."""
    flow = flows.flow_from_session(request.session, purpose)
    provider = provider_named(flow.provider) if flow is not None else get_provider()
    if provider is None or not provider.simulated:
        return error_response(request, errors.SANDBOX_OFF)
    refusal = sandbox_refusal()
    if refusal is not None:
        return error_response(request, refusal.error)
    if flow is None or not flow.call_to:
        return no_flow(request, purpose)
    data = request_data(request)
    if data is None:
        return error_response(request, errors.BODY_NOT_AN_OBJECT)
    caller = None
    if data.get("caller") not in (None, ""):  # absent or an empty form field: the flow's own phone
        try:
            caller = normalize_phone(data["caller"])
        except InvalidPhoneNumber as exc:
            return error_response(request, exc.error)
    flows.simulate_call(flow.call_to, caller)
    flow.refresh_from_db()
    if wants_json(request):
        return JsonResponse({"status": flow.current_status(), "expires_in": flow.expires_in()})
    return redirect(FLOW_URLS[purpose]["challenge"])
