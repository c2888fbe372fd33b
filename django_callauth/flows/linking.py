"""Adding a phone to the logged-in user's account by a call, and removing one.

Linking never logs anyone in or out: it writes one ``CallAuthPhone`` for the user who
started the flow, once the call proved the phone is theirs. Whether the phone already
belongs to another account is said only then (no enumeration), and never whose it is.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from .. import signals
from ..adapter import get_adapter
from ..models import CallAuthFlow, CallAuthPhone, FailureReason, FlowStatus
from ..phones import mask_phone
from ..types import Outcome

logger = logging.getLogger("django_callauth")


class LinkOutcome(Outcome):
    """What ``link_phone`` did with a confirmed link flow."""

    #: The phone is the user's now (added, or proved again).
    LINKED = "linked"
    #: Not this user's flow (logged out, or in as someone else, since it started): nothing changed.
    NO_FLOW = "no_flow"
    #: The flow was not confirmed (any more): its status says why.
    NOT_CONFIRMED = "not_confirmed"
    #: The call was used, but the phone was not added: the flow failed, and its
    #: ``failure_reason`` says why (``not_allowed``, ``phone_taken``).
    REFUSED = "refused"


class RemoveOutcome(Outcome):
    """What ``remove_phone`` did; the view answers each refusal with its own error (errors.py)."""

    REMOVED = "removed"
    #: The user has no phone with that id.
    NOT_FOUND = "not_found"
    #: The adapter's ``may_remove_phone`` refused (by default: the last phone of an account without a password).
    LAST_LOGIN_METHOD = "last_login_method"


def link_phone(request: HttpRequest, flow: CallAuthFlow) -> LinkOutcome:
    """Finish a confirmed link flow for ``request.user``: what happened (``LinkOutcome``)."""
    user = request.user
    if not user.is_authenticated or flow.user_id != user.pk:
        # Logged out, or in as someone else, since the flow started: it is not theirs to finish.
        return LinkOutcome.NO_FLOW
    refusal: FailureReason | None = None
    with transaction.atomic():
        if not flow.claim_for_link():
            return LinkOutcome.NOT_CONFIRMED  # the caller reads why from the flow
        if not get_adapter().may_link_phone(request, user, flow.phone):
            refusal = FailureReason.NOT_ALLOWED
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
                refusal = FailureReason.PHONE_TAKEN
        if refusal is not None:
            flow.fail(refusal, from_status=FlowStatus.USED)
    if refusal is not None:
        logger.info("Flow %s: %s not linked (%s)", flow.pk, mask_phone(flow.phone), refusal)
        signals.send_robust(signals.flow_failed, flow=flow, reason=refusal)
        return LinkOutcome.REFUSED
    logger.info("Flow %s: %s linked to user %s", flow.pk, mask_phone(flow.phone), user.pk)
    signals.send_robust(signals.phone_linked, flow=flow, request=request, user=user, phone=flow.phone)
    return LinkOutcome.LINKED


def remove_phone(request: HttpRequest, link_id: object) -> tuple[RemoveOutcome, str]:
    """Remove one of ``request.user``'s phones: (what happened, the phone)."""
    user = request.user
    if not user.is_authenticated:
        # The views ask for a login first (login_required); anonymous has no phones.
        return RemoveOutcome.NOT_FOUND, ""
    with transaction.atomic():
        # Locking the user's phones serialises two removals racing for the last one.
        links = list(CallAuthPhone.objects.select_for_update().filter(user=user).order_by("pk"))
        link = next((link for link in links if str(link.pk) == str(link_id)), None)
        if link is None:
            return RemoveOutcome.NOT_FOUND, ""
        if not get_adapter().may_remove_phone(request, user, link, remaining=len(links) - 1):
            return RemoveOutcome.LAST_LOGIN_METHOD, link.phone
        link.delete()
    logger.info("%s removed from user %s", mask_phone(link.phone), user.pk)
    signals.send_robust(signals.phone_removed, request=request, user=user, phone=link.phone)
    return RemoveOutcome.REMOVED, link.phone
