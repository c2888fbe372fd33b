"""allauth's phone interface on the app's phones (``CallAuthPhone``).

allauth asks its account adapter for a user's phone (``get_phone``) and for the user of a
phone (``get_user_by_phone``). A phone in ``CallAuthPhone`` was proven by a call, so it is
a verified phone to allauth. Mix this in before ``DefaultAccountAdapter``::

    class AccountAdapter(CallAuthPhoneAccountAdapterMixin, DefaultAccountAdapter):
        pass
"""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter

from django_callauth.models import CallAuthPhone
from django_callauth.phones import InvalidPhoneNumber, normalize_phone

logger = logging.getLogger("django_callauth")


class CallAuthPhoneAccountAdapterMixin:
    def get_phone(self, user: Any) -> tuple[str, bool] | None:
        """The user's first linked phone, verified: a call proved it."""
        link = CallAuthPhone.objects.filter(user_id=user.pk).order_by("created_at", "pk").first()
        return (link.phone, True) if link else None

    def set_phone(self, user: Any, phone: str, verified: bool) -> None:
        """Link a verified phone; an unverified one is not stored.

        Every phone in the table logs its user in by a call: one nobody proved yet must
        not (allauth's phone verification calls :meth:`set_phone_verified` once it is).
        """
        if verified:
            self.set_phone_verified(user, phone)

    def set_phone_verified(self, user: Any, phone: str) -> None:
        """Link ``phone`` to ``user``, unless it logs in someone else: it is never moved."""
        try:
            normalized = normalize_phone(phone)
        except InvalidPhoneNumber:
            logger.warning("A phone verified by allauth is not one a call can log in from; it is not linked")
            return
        link, _ = CallAuthPhone.objects.get_or_create(phone=normalized, defaults={"user": user})
        if link.user_id != user.pk:
            logger.warning("A phone verified by allauth is linked to another user; it stays there")

    def get_user_by_phone(self, phone: str) -> Any | None:
        try:
            normalized = normalize_phone(phone)
        except InvalidPhoneNumber:
            return None
        link = CallAuthPhone.objects.select_related("user").filter(phone=normalized).first()
        return link.user if link else None


class CallAuthAccountAdapter(CallAuthPhoneAccountAdapterMixin, DefaultAccountAdapter):  # type: ignore[misc]
    """allauth's default adapter with the phone interface above: ``ACCOUNT_ADAPTER`` can name it."""
