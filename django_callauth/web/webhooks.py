"""The provider's requests to the site: per-flow webhooks and account-wide callbacks.

Neither logs anyone in. A per-flow webhook carries the flow's secret in its path; an
account callback carries none and names the provider's ids. Both only tell ``flows`` that a
call may have come, and the flow's own provider (the one named on it) reads them. The
``check`` that verifies a report is asked in the same request (``flows.verify_report``), so
the page learns of the call from its next event or poll; a failure of that check still
answers the provider as if it was not asked, and the next poll or finish asks again.

Neither ever answers a 500. Django would log "Internal Server Error: <path>" and mail the
admins a report of the request: the webhook's path carries its secret, and the provider
appends the caller's number (docs/security.rst, invariants 9 and 16). A failure (the
database down) is answered ``temporarily_unavailable`` (503, so the provider may send it
again) and logged on our logger, naming the flow, not the request.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from .. import errors, flows
from ..errors import ApiError
from ..guards import webhook_secrets
from ..models import CallAuthFlow
from ..providers import provider_named
from ..providers.base import WebhookStyle
from .negotiation import allow_methods

logger = logging.getLogger("django_callauth")


def _unknown(error: ApiError) -> HttpResponse:
    # JSON whatever the request accepts: a provider's server reads it, never a browser.
    return JsonResponse(error.json(), status=error.status)


def _logged_here(response: HttpResponse) -> HttpResponse:
    """``response``, marked as logged, so Django does not log it again with the request's path.

    Django logs every 4xx and 5xx answer on ``django.request`` ("Service Unavailable: <path>"),
    and its default logging mails the 5xx ones to the admins with the whole request: the
    webhook's path carries the secret. The webhook has logged what happened on our logger
    already; the mark is the one ``django.utils.log.log_response`` sets after logging.
    """
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


@sensitive_variables("secret", "kwargs")  # outermost: the wrappers' frames hold it in kwargs
@csrf_exempt
@allow_methods("GET", "POST")
@transaction.non_atomic_requests
def webhook(request: HttpRequest, flow_id: str, secret: str) -> HttpResponse:
    """What the provider calls when a call came. Trusts nothing until ``check`` agrees, asked here and now."""
    try:
        response = _webhook(request, flow_id, secret)
    except Exception:
        logger.exception("Webhook for flow %s failed; answered 503", flow_id)
        response = _unknown(errors.PROVIDER_REQUEST_FAILED)
    return _logged_here(response) if response.status_code >= HTTPStatus.BAD_REQUEST else response


@sensitive_variables("secret")
def _webhook(request: HttpRequest, flow_id: str, secret: str) -> HttpResponse:
    flow = CallAuthFlow.objects.filter(pk=flow_id).first()
    if flow is None or not webhook_secrets.verify_secret(secret, flow.webhook_secret_hash):
        logger.warning("Webhook with an unknown flow or a wrong secret")
        return _unknown(errors.UNKNOWN_WEBHOOK)
    provider = provider_named(flow.provider)  # the flow's own provider, whatever is configured now
    if provider is None or provider.webhook_style is not WebhookStyle.PER_FLOW:
        logger.warning("Webhook for flow %s of a provider without per-flow webhooks", flow.pk)
        return _unknown(errors.UNKNOWN_WEBHOOK)
    outcome = flows.handle_webhook(flow, provider.parse_webhook(request), provider)
    if outcome is flows.ReportOutcome.ACCEPTED:
        flows.verify_report(flow)  # now, so the page's next event or poll says how it went
    # The flow's status now says what the outcome led to (or why the report was ignored).
    logger.info("Webhook for flow %s: %s (flow %s)", flow.pk, outcome, flow.current_status())
    return JsonResponse({"ok": True})


@csrf_exempt
@allow_methods("GET", "POST")
@transaction.non_atomic_requests
def callback(request: HttpRequest, provider_name: str) -> HttpResponse:
    """A provider's account-wide callback: each report only makes its flow eligible for a check.

    The URL is registered with the provider by hand and carries no secret, so anyone may
    call it: nothing it says is believed until ``check`` of our stored id agrees.
    """
    try:
        return _callback(request, provider_name)
    except Exception:
        logger.exception("Callback %r failed; answered 503", provider_name)
        return _unknown(errors.PROVIDER_REQUEST_FAILED)


def _callback(request: HttpRequest, provider_name: str) -> HttpResponse:
    provider = provider_named(provider_name)
    if provider is None or provider.webhook_style is not WebhookStyle.ACCOUNT:
        return _unknown(errors.UNKNOWN_CALLBACK)
    for report in provider.parse_callback(request):
        if not report.called or report.provider_id is None:
            continue
        flow = CallAuthFlow.objects.filter(provider=provider.name, provider_id=report.provider_id).first()
        if flow is None:
            logger.info("Callback of %s names no flow of ours", provider.name)
            continue
        outcome = flows.handle_callback(flow, report)
        if outcome is flows.ReportOutcome.ACCEPTED:
            flows.verify_report(flow)  # bounded as a poll's check: a forged report costs no more
        logger.info("Callback for flow %s: %s (flow %s)", flow.pk, outcome, flow.current_status())
    return provider.callback_response()
