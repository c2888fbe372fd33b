"""Starting a flow: the limits first, then the providers in failover order, then the browser's session.

Starting again with the same phone reuses the browser's live flow for free.

``CALLAUTH_PROVIDER`` may list several providers. The first is asked; when it fails in a
way that proves it set up no call (``ProviderError.no_call_set_up``: the connection was
never made, it answered "unavailable", 429 or 503, or our credentials were refused or
missing), the next one is asked, and so on. Any other failure (a timeout after the request
was sent, a 500, a garbled answer) may have set up and billed a call: the start fails
there. The flow row is created once, before the first provider is asked, and handed to the
next one while no provider has started it; the rate limits counted it once (``start_flow``).
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import signals
from ..conf import app_settings
from ..guards import limits, webhook_secrets
from ..guards.clientip import client_ip
from ..models import CallAuthFlow, FailureReason, FlowPurpose, FlowStatus
from ..phones import mask_phone
from ..providers import balances, get_providers
from ..providers.base import CallAuthProvider, ProviderError, StartedCall, WebhookStyle
from ..providers.review import ReviewProvider, is_review_phone
from .session import bind, flow_from_session

logger = logging.getLogger("django_callauth")

# Starting again with the same phone reuses the live flow (no new billed request)
# while it has at least this many seconds left to make the call.
REUSE_MIN_SECONDS = 20


def start_flow(
    request: HttpRequest, phone: str, next_url: str = "", *, purpose: FlowPurpose = FlowPurpose.LOGIN
) -> CallAuthFlow:
    """Hand out a number for ``phone`` and bind the flow to this browser's session.

    Reusing this browser's live flow for the same phone costs nothing. Otherwise the
    cost limits are taken first (``guards.limits.StartRefused``), once however many providers
    of a failover list are asked (``start_new``). Raises ``ProviderError`` when no provider
    could start it: the new flow is then marked failed, and the browser keeps the flow it
    had. A flow adding a phone (``FlowPurpose.LINK``) belongs to the logged-in user who
    started it.
    """
    previous = flow_from_session(request.session, purpose)
    if previous is not None and _reusable(request, previous, phone):
        bind(request, previous)
        return previous
    with limits.one_start_at_a_time(request):
        limits.consume_start(request, phone)
        flow = start_new(request, phone, next_url, purpose)
    if previous is not None and previous.status == FlowStatus.PENDING:
        if previous.fail(FailureReason.CANCELLED):
            signals.send_robust(signals.flow_failed, flow=previous, reason=FailureReason.CANCELLED)
    bind(request, flow)
    signals.send_robust(signals.flow_started, flow=flow, request=request)
    return flow


def _reusable(request: HttpRequest, flow: CallAuthFlow, phone: str) -> bool:
    return (
        flow.phone == phone
        and (flow.purpose == FlowPurpose.LOGIN or flow.user_id == getattr(request.user, "pk", None))
        and flow.status == FlowStatus.PENDING
        and bool(flow.call_to)
        and flow.expires_in() >= REUSE_MIN_SECONDS
    )


def _owner(request: HttpRequest) -> Any:
    """The logged-in user a flow adding a phone belongs to (its views require a login).

    Typed ``Any``: ``request.user`` may be ``AnonymousUser`` as far as the types know.
    """
    return request.user


def ttl_for(provider: CallAuthProvider) -> int:
    """Seconds a flow of ``provider`` lasts: ``CALLAUTH_TTL``, never past its numbers' lifetime."""
    return min(app_settings.TTL or provider.lifetime, provider.lifetime)


@sensitive_variables("secret", "path")
def webhook_url_for(flow: CallAuthFlow, secret: str) -> str:
    path = reverse("callauth:webhook", kwargs={"flow_id": flow.pk, "secret": secret})
    return app_settings.WEBHOOK_BASE_URL + path


@sensitive_variables("secret", "webhook_url")  # a provider's frames below name it so too
def start_new(
    request: HttpRequest, phone: str, next_url: str, purpose: FlowPurpose = FlowPurpose.LOGIN
) -> CallAuthFlow:
    """A flow for ``phone`` started by the first provider that can; raises the last ``ProviderError``.

    The row is committed before any provider is asked, so a webhook racing the start's
    answer finds it. When every provider failed, the flow is marked failed. A flow adding
    a phone (``FlowPurpose.LINK``) belongs to the logged-in user who started it.
    """
    providers = _providers_for(phone, purpose)
    now = timezone.now()
    secret = _new_secret(providers[0])
    flow = CallAuthFlow.objects.create(
        phone=phone,
        purpose=purpose,
        user=_owner(request) if purpose == FlowPurpose.LINK else None,
        provider=providers[0].name,
        first_provider=providers[0].name,
        webhook_secret_hash=webhook_secrets.hash_secret(secret) if secret else "",
        next_url=next_url,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_for(providers[0])),
    )
    # The last provider always breaks or returns: the loop never runs out (hence no branch).
    for index, provider in enumerate(providers):  # pragma: no branch
        if index:
            secret = _new_secret(provider)
            expires_at = timezone.now() + timedelta(seconds=ttl_for(provider))
            secret_hash = webhook_secrets.hash_secret(secret) if secret else ""
            flow.hand_to(provider.name, webhook_secret_hash=secret_hash, expires_at=expires_at)
        try:
            started = _start(provider, request, phone, webhook_url_for(flow, secret) if secret else None)
        except ProviderError as exc:
            failure = exc
        else:
            flow.set_started(call_to=started.call_to, provider_id=started.provider_id)
            mode = "webhook" if secret else "callback" if provider.awaits_callback else "check"
            logger.info("Flow %s started by %s for %s in %s mode", flow.pk, provider.name, mask_phone(phone), mode)
            if isinstance(provider, ReviewProvider):
                logger.warning("Flow %s: review phone %s logs in without a call", flow.pk, mask_phone(phone))
                signals.send_robust(signals.review_phone_used, flow=flow, request=request)
            return flow
        following = providers[index + 1] if index + 1 < len(providers) else None
        if following is None or not failure.no_call_set_up:
            break
        logger.warning(
            "Flow %s: %s set up no call (%s); failing over to %s",
            flow.pk,
            provider.name,
            failure.error.code,
            following.name,
        )
        signals.send_robust(
            signals.failed_over,
            flow=flow,
            request=request,
            failed=provider.name,
            provider=following.name,
            error=failure,
        )
    flow.fail(FailureReason.PROVIDER_ERROR)
    logger.warning("Flow %s: provider refused to start (%s)", flow.pk, failure.error.code)
    signals.send_robust(signals.flow_failed, flow=flow, reason=FailureReason.PROVIDER_ERROR)
    raise failure


def _providers_for(phone: str, purpose: str) -> list[CallAuthProvider]:
    """Who is asked to start a flow for ``phone``: the review provider alone for a review phone's login.

    Only a login: adding a review phone to an account (whoever is logged in) needs a real call.
    """
    if purpose == FlowPurpose.LOGIN and is_review_phone(phone):
        return [ReviewProvider()]
    return _passing_low_balances(get_providers())


def _passing_low_balances(providers: list[CallAuthProvider]) -> list[CallAuthProvider]:
    """The failover list without the providers last seen below their ``CALLAUTH_LOW_BALANCE``.

    Never without the last one: a balance is only what the provider said when last asked
    (it may have been topped up since, or its account may still work on credit), so with no
    other provider left a start still tries rather than refusing every login.
    """
    low = balances.known_low([provider.name for provider in providers[:-1]])
    kept = [provider for provider in providers[:-1] if provider.name not in low]
    if low:
        logger.info("Passing by %s: balance below the threshold", ", ".join(sorted(low)))
    return [*kept, providers[-1]]


@sensitive_variables("webhook_url")
def _start(provider: CallAuthProvider, request: HttpRequest, phone: str, webhook_url: str | None) -> StartedCall:
    """``provider.start``, with the person's public address when it asks for it (``wants_client_ip``).

    Only asked-for: a provider written before ``client_ip`` existed would refuse the keyword.
    """
    if provider.wants_client_ip:
        return provider.start(phone, webhook_url, client_ip=public_client_ip(request))  # type: ignore[call-arg]
    return provider.start(phone, webhook_url)


def public_client_ip(request: HttpRequest) -> str | None:
    """The address the limits count (clientip.py), when it is a public one; else None.

    "unknown", private, loopback, link-local and reserved addresses tell a provider nothing
    about where the person is, and public clients report sms.ru refusing requests carrying
    a private one. An IPv4 address mapped into IPv6 is sent as IPv4.
    """
    try:
        address = ipaddress.ip_address(client_ip(request).strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address) if address.is_global else None


@sensitive_variables("secret")
def _new_secret(provider: CallAuthProvider) -> str:
    """A per-flow webhook secret when ``provider`` takes a webhook URL and the site has one, else ""."""
    if provider.webhook_style is WebhookStyle.PER_FLOW and app_settings.WEBHOOK_BASE_URL:
        return webhook_secrets.make_secret()
    return ""
