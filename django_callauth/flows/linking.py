"""Adding a phone to the logged-in user's account by a call, and removing one.

Linking never logs anyone in or out: it writes one ``CallAuthPhone`` for the user who
started the flow, once the call proved the phone is theirs. Whether the phone already
belongs to another account is said only then (no enumeration), and never whose it is.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from .. import signals
from ..adapter import get_adapter
from ..models import CallAuthFlow, CallAuthPhone, FailureReason, FlowStatus
from ..phones import mask_phone

logger = logging.getLogger("django_callauth")


def link_phone(request: HttpRequest, flow: CallAuthFlow) -> str:
    """Finish a confirmed link flow for ``request.user``.

    Returns "linked", "no_flow" (not this user's flow), a ``FailureReason`` the flow
    ended with, or "" when the flow was not confirmed (its state says why).
    """
    user: Any = request.user
    if flow.user_id != user.pk:
        # Logged out, or in as someone else, since the flow started: it is not theirs to finish.
        return "no_flow"
    outcome = ""
    with transaction.atomic():
        if not flow.claim_for_link():
            return ""  # not confirmed (any more): the caller reads why from the flow
        if not get_adapter().may_link_phone(request, user, flow.phone):
            outcome = FailureReason.NOT_ALLOWED
        else:
            owner = CallAuthPhone.objects.filter(phone=flow.phone).values_list("user_id", flat=True).first()
            if owner is None:
                try:
                    with transaction.atomic():
                        CallAuthPhone.objects.create(user=user, phone=flow.phone)
                # pragma below: only concurrent finishes on PostgreSQL insert between the look-up and
                # this insert (test_concurrency.py, ten accounts linking one phone); SQLite serialises
                # writers, and a row inserted from this connection is rolled back with the savepoint.
                except IntegrityError:  # pragma: no cover  (linked a moment ago, by a concurrent finish: by whom?)
                    owner = CallAuthPhone.objects.filter(phone=flow.phone).values_list("user_id", flat=True).first()
            elif owner == user.pk:
                # The owner proved the phone again: it counts as added now, so a dormant phone
                # logs in again (invariant 19; the adapter's is_phone_dormant).
                CallAuthPhone.objects.filter(phone=flow.phone, user=user).update(created_at=timezone.now())
            if owner is not None and owner != user.pk:
                outcome = FailureReason.PHONE_TAKEN
        if outcome:
            flow.fail(outcome, from_status=FlowStatus.USED)
    if outcome:
        logger.info("Flow %s: %s not linked (%s)", flow.pk, mask_phone(flow.phone), outcome)
        signals.send_robust(signals.flow_failed, flow=flow, reason=outcome)
        return outcome
    logger.info("Flow %s: %s linked to user %s", flow.pk, mask_phone(flow.phone), user.pk)
    signals.send_robust(signals.phone_linked, flow=flow, request=request, user=user, phone=flow.phone)
    return "linked"


#: What ``remove_phone`` did; the view answers each refusal with its own error (errors.py).
RemoveOutcome = Literal["removed", "not_found", "last_login_method"]


def remove_phone(request: HttpRequest, link_id: object) -> tuple[RemoveOutcome, str]:
    """Remove one of ``request.user``'s phones: (what happened, the phone)."""
    user: Any = request.user
    with transaction.atomic():
        # Locking the user's phones serialises two removals racing for the last one.
        links = list(CallAuthPhone.objects.select_for_update().filter(user=user).order_by("pk"))
        link = next((link for link in links if str(link.pk) == str(link_id)), None)
        if link is None:
            return "not_found", ""
        if not get_adapter().may_remove_phone(user, link, remaining=len(links) - 1):
            return "last_login_method", link.phone
        link.delete()
    logger.info("%s removed from user %s", mask_phone(link.phone), user.pk)
    signals.send_robust(signals.phone_removed, request=request, user=user, phone=link.phone)
    return "removed", link.phone
