"""``CallAuthBackend``: authenticates a confirmed flow, never a bare phone number.

Accepting ``phone=`` would let any code path log anyone in (docs/security.rst, invariant 5);
the only credential is a flow the provider confirmed, which the view found through the
browser's own session.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from . import signals
from .adapter import CallAuthAdapter, get_adapter
from .models import CallAuthFlow, CallAuthPhone, FailureReason, FlowStatus
from .phones import mask_phone
from .types import User

logger = logging.getLogger("django_callauth")


class CallAuthBackend(BaseBackend):
    def authenticate(
        self, request: HttpRequest | None, callauth_flow: CallAuthFlow | None = None, **kwargs: Any
    ) -> User | None:
        if not isinstance(callauth_flow, CallAuthFlow):
            return None
        flow = callauth_flow
        adapter = get_adapter()
        failure: FailureReason | None = None
        with transaction.atomic():
            # Claiming first makes concurrent finishes race on one row: one wins.
            if not flow.claim_for_login():
                logger.info("Flow %s was not claimable for login (status %s)", flow.pk, flow.status)
                return None
            user = adapter.get_user(request, flow.phone)
            # Asked before anything about the account: a silent number may be someone else's now.
            dormant = user is not None and self._is_dormant(adapter, request, flow.phone, user)
            if user is None and adapter.is_signup_allowed(request, flow.phone):
                user = self._sign_up(adapter, request, flow.phone)
            if user is None:
                flow.fail(FailureReason.NO_ACCOUNT, from_status=FlowStatus.USED)
                logger.info("Flow %s confirmed, but no account has phone %s", flow.pk, mask_phone(flow.phone))
                failure = FailureReason.NO_ACCOUNT
            elif dormant:
                flow.fail(FailureReason.DORMANT, from_status=FlowStatus.USED)
                logger.warning("Flow %s: %s has not logged in for too long", flow.pk, mask_phone(flow.phone))
                failure = FailureReason.DORMANT
            elif not adapter.is_login_allowed(request, user):
                flow.fail(FailureReason.NOT_ALLOWED, from_status=FlowStatus.USED)
                logger.warning("Flow %s: user %s may not log in by call", flow.pk, user.pk)
                failure = FailureReason.NOT_ALLOWED
            else:
                flow.set_user(user)
                adapter.record_login(request, user, flow.phone)
        if failure is not None:
            # Sent outside the atomic block: a failing receiver cannot undo the flow's end.
            signals.send_robust(signals.flow_failed, flow=flow, reason=failure)
            return None
        return user

    def _is_dormant(self, adapter: CallAuthAdapter, request: HttpRequest | None, phone: str, user: User) -> bool:
        """Whether the link of ``phone`` to ``user`` is too old to log in (none: the adapter keeps phones itself)."""
        link = CallAuthPhone.objects.filter(phone=phone, user=user).first()
        return link is not None and bool(adapter.is_phone_dormant(request, link))

    def _sign_up(self, adapter: CallAuthAdapter, request: HttpRequest | None, phone: str) -> User | None:
        try:
            with transaction.atomic():
                return adapter.create_user(request, phone)
        except IntegrityError:
            # A concurrent signup for the same phone won; use its account.
            return adapter.get_user(request, phone)

    def get_user(self, user_id: Any) -> User | None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        # Django asks this on every request of a session this backend logged in: a user who
        # may no longer log in by call (made staff, deactivated) is logged out at once.
        # Django passes no request here, so neither can the adapter's hook: request is None.
        try:
            allowed = get_adapter().is_login_allowed(None, user)
        except Exception:
            # Project code failed: this request is anonymous (the session is kept), never a 500.
            logger.exception("The adapter failed to say whether user %s may stay logged in by call", user.pk)
            return None
        return user if allowed else None
