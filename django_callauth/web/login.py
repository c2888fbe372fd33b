"""The login pages and endpoints: start, challenge, status, complete.

Each answers HTML to browsers and JSON to clients that send ``Accept: application/json``.
The flow is always the one in the browser's session (docs/security.rst, invariant 1); no
view here takes a flow id from the request (the provider's webhooks are in web/webhooks.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from django.contrib.auth import SESSION_KEY, authenticate, login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from .. import errors, flows, signals
from ..adapter import get_adapter
from ..errors import ApiError, CallAuthRefusal
from ..guards import devices
from ..models import CallAuthFlow, FlowPurpose, FlowStatus
from ..phones import MAX_INPUT_LENGTH, normalize_phone
from ..types import User
from . import formstate
from .negotiation import csrf_protect, endpoint, error_response, request_data, wants_json
from .presenters import (
    CHALLENGE_TEMPLATE,
    FLOW_URLS,
    LOGIN_TEMPLATE,
    challenge_context,
    challenge_error,
    flow_payload,
    flow_problem,
    no_flow,
    retry_helps,
    status_payload,
)
from .redirects import safe_next

logger = logging.getLogger("django_callauth")

#: How a call's user is logged in: ``(request, flow, user) -> HttpResponse | None``. The
#: default is Django's ``login()``; another authentication system installs its own (the
#: allauth bridge, django_callauth.contrib.allauth, runs allauth's login pipeline) so its
#: rules apply to a login by call too (docs/security.rst, invariant 21). A response it
#: returns is where the person goes next: its redirect, when the user is not logged in
#: yet, is a step the other system asks for first (MFA); the flow is used either way.
LoginHandler = Callable[[HttpRequest, CallAuthFlow, User], "HttpResponse | None"]


def django_login(request: HttpRequest, flow: CallAuthFlow, user: User) -> None:
    login(request, user)


login_handler: LoginHandler = django_login


def set_login_handler(handler: LoginHandler) -> None:
    """Make ``handler`` log in every call's user from now on (an app's ``ready()`` calls it)."""
    global login_handler
    login_handler = handler


@sensitive_post_parameters("phone")
@endpoint("POST")
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
    except CallAuthRefusal as exc:
        return refused(exc.error)
    if wants_json(request):
        return JsonResponse(flow_payload(request, flow), status=201)
    return redirect("callauth:challenge")


@endpoint("GET")
@never_cache
@transaction.non_atomic_requests
def challenge(request: HttpRequest, purpose: FlowPurpose = FlowPurpose.LOGIN) -> HttpResponse:
    flow = flows.flow_from_session(request.session, purpose)
    if flow is None or not flow.call_to:
        return no_flow(request, purpose)
    flows.refresh_flow(flow, request=request)
    if wants_json(request):
        return JsonResponse(flow_payload(request, flow))
    context = challenge_context(request, flow)
    if context["ended"]:
        # The page's script reloads it when a flow ends: say exactly why it ended.
        problem = flow_problem(flow)
        context.update(error_code=problem.code.value, error_message=problem.message, retry=retry_helps(problem))
    return render(request, CHALLENGE_TEMPLATE, context)


@endpoint("GET")
@never_cache
@transaction.non_atomic_requests
def status(request: HttpRequest, purpose: FlowPurpose = FlowPurpose.LOGIN) -> HttpResponse:
    flow, wait = flows.flow_to_poll(request.session, purpose)
    if wait is not None:  # a courtesy: polls do not cost checks (flows/refresh.py bounds those)
        return error_response(request, replace(errors.SLOW_DOWN.format(wait=wait), retry_after=wait))
    if flow is None:
        return no_flow(request, purpose)
    flows.refresh_flow(flow, request=request)
    if not wants_json(request):
        return redirect(FLOW_URLS[purpose]["challenge"])
    return JsonResponse(status_payload(flow))


@endpoint("POST")
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


def _logged_in(request: HttpRequest, flow: CallAuthFlow, user: User) -> HttpResponse:
    """The login handler and what follows; project code failing here never loses the login (invariant 14).

    The flow is used by now. A 5xx answer would not save the rotated session
    (SessionMiddleware skips it), so whatever a receiver raises is logged, and the person
    lands logged in as long as the session holds the user. A step another system asks for
    before the login (its handler's redirect) is where the person goes instead.
    """
    try:
        handed = login_handler(request, flow, user)
    except Exception:
        # user_logged_in is sent last by login(): the session is usually complete already.
        logger.exception("Flow %s: logging in failed in project code (a receiver of user_logged_in?)", flow.pk)
        handed = None
    logged_in = request.session.get(SESSION_KEY) == user._meta.pk.value_to_string(user)
    next_step = handed.get("Location") if handed is not None else None
    if not logged_in and next_step is None:
        logger.error("Flow %s: the login could not be stored in the session", flow.pk)
        return error_response(request, errors.LOGIN_FAILED)
    flows.forget_flow(request.session)
    if logged_in:
        signals.send_robust(signals.logged_in, flow=flow, request=request, user=user)
    response = handed if handed is not None and not wants_json(request) else None
    if response is None:
        target = next_step or _login_target(request, flow)
        response = JsonResponse({"redirect": target}) if wants_json(request) else redirect(target)
        if handed is not None:
            response.cookies = handed.cookies  # what the handler's receivers set (allauth's user_logged_in)
    devices.remember(request, response, flow.phone)  # this browser proved the phone: its own allowance
    return response


def _login_target(request: HttpRequest, flow: CallAuthFlow) -> str:
    try:
        return safe_next(request, flow.next_url) or get_adapter().get_login_redirect_url(request)
    except Exception:
        logger.exception("Flow %s: the adapter's login redirect failed; sending the user to /", flow.pk)
        return "/"
