"""The sandbox's "Simulate the call" button: play the phone for this browser's flow (sandbox flows only)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.debug import sensitive_post_parameters

from .. import errors, flows
from ..errors import CallAuthRefusal
from ..models import FlowPurpose
from ..phones import normalize_phone
from ..providers import get_provider, provider_named
from ..providers.sandbox import sandbox_refusal
from .negotiation import csrf_protect, endpoint, error_response, request_data, wants_json
from .presenters import FLOW_URLS, no_flow, status_payload

logger = logging.getLogger("django_callauth")


@sensitive_post_parameters("caller")
@endpoint("POST")
@csrf_protect
@transaction.non_atomic_requests
def sandbox_call(request: HttpRequest, purpose: FlowPurpose = FlowPurpose.LOGIN) -> HttpResponse:
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
        except CallAuthRefusal as exc:
            return error_response(request, exc.error)
    flows.simulate_call(flow.call_to, caller)
    flow.refresh_from_db()
    if wants_json(request):
        return JsonResponse(status_payload(flow))
    return redirect(FLOW_URLS[purpose]["challenge"])
