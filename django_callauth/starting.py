"""Asking the providers for a number to call: one flow row, the failover order, its lifetime.

``CALLAUTH_PROVIDER`` may list several providers. The first is asked; when it fails in a
way that proves it set up no call (``ProviderError.no_call_set_up``: the connection was
never made, it answered "unavailable", 429 or 503, or our credentials were refused or
missing), the next one is asked, and so on. Any other failure (a timeout after the request
was sent, a 500, a garbled answer) may have set up and billed a call: the start fails
there. The flow row is created once, before the first provider is asked, and handed to the
next one while no provider has started it; the rate limits counted it once (flows.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import signals, tokens
from .conf import app_settings
from .models import CallAuthFlow, FailureReason, FlowPurpose
from .phones import mask_phone
from .providers import get_providers
from .providers.base import CallAuthProvider, ProviderError, WebhookStyle

logger = logging.getLogger("django_callauth")


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
def start_new(request: HttpRequest, phone: str, next_url: str, purpose: str = FlowPurpose.LOGIN) -> CallAuthFlow:
    """A flow for ``phone`` started by the first provider that can; raises the last ``ProviderError``.

    The row is committed before any provider is asked, so a webhook racing the start's
    answer finds it. When every provider failed, the flow is marked failed. A flow adding
    a phone (``FlowPurpose.LINK``) belongs to the logged-in user who started it.
    """
    providers = get_providers()
    now = timezone.now()
    secret = _new_secret(providers[0])
    flow = CallAuthFlow.objects.create(
        phone=phone,
        purpose=purpose,
        user=_owner(request) if purpose == FlowPurpose.LINK else None,
        provider=providers[0].name,
        first_provider=providers[0].name,
        webhook_secret_hash=tokens.hash_secret(secret) if secret else "",
        next_url=next_url,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_for(providers[0])),
    )
    # The last provider always breaks or returns: the loop never runs out (hence no branch).
    for index, provider in enumerate(providers):  # pragma: no branch
        if index:
            secret = _new_secret(provider)
            expires_at = timezone.now() + timedelta(seconds=ttl_for(provider))
            secret_hash = tokens.hash_secret(secret) if secret else ""
            flow.hand_to(provider.name, webhook_secret_hash=secret_hash, expires_at=expires_at)
        try:
            started = provider.start(phone, webhook_url_for(flow, secret) if secret else None)
        except ProviderError as exc:
            failure = exc
        else:
            flow.set_started(call_to=started.call_to, provider_id=started.provider_id)
            mode = "webhook" if secret else "callback" if provider.awaits_callback else "check"
            logger.info("Flow %s started by %s for %s in %s mode", flow.pk, provider.name, mask_phone(phone), mode)
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


@sensitive_variables("secret")
def _new_secret(provider: CallAuthProvider) -> str:
    """A per-flow webhook secret when ``provider`` takes a webhook URL and the site has one, else ""."""
    if provider.webhook_style is WebhookStyle.PER_FLOW and app_settings.WEBHOOK_BASE_URL:
        return tokens.make_secret()
    return ""
