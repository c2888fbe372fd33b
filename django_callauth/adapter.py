"""What a project overrides: find the user for a phone, create one, who may log in.

Point ``CALLAUTH_ADAPTER`` at a subclass of :class:`CallAuthAdapter`. The adapter is
only asked after a call proved possession of the phone, so nothing it does can be
used to enumerate accounts (docs/security.rst, invariant 7).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.utils import timezone
from django.utils.module_loading import import_string

from .conf import app_settings
from .models import CallAuthPhone
from .types import User


class CallAuthAdapter:
    """The project's decisions about accounts; every hook takes ``request`` first.

    ``request`` is the request being answered (the browser finishing a login or managing
    its phones), or ``None`` where Django asks without one: ``is_login_allowed`` from
    ``CallAuthBackend.get_user``, and any hook a project calls from a management command
    or ``authenticate(None, ...)``. A new instance is made for each use.
    """

    def get_user(self, request: HttpRequest | None, phone: str) -> User | None:
        """The user whose confirmed phone is ``phone`` (E.164), or None."""
        link = CallAuthPhone.objects.select_related("user").filter(phone=phone).first()
        return link.user if link else None

    def is_signup_allowed(self, request: HttpRequest | None, phone: str) -> bool:
        """Whether to create an account for a confirmed ``phone`` that has none."""
        return app_settings.SIGNUP

    def create_user(self, request: HttpRequest | None, phone: str) -> User:
        """Create a user with an unusable password and link ``phone`` to it."""
        user_model = get_user_model()
        username = self.username_for_phone(request, phone)
        manager: Any = user_model._default_manager
        # Never adopt an existing account that happens to be named like the phone:
        # it may belong to someone else.
        if manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
            username = f"{username}-{secrets.token_hex(3)}"
        user: User = manager.create_user(**{user_model.USERNAME_FIELD: username})
        CallAuthPhone.objects.create(user=user, phone=phone)
        return user

    def username_for_phone(self, request: HttpRequest | None, phone: str) -> str:
        """Override when ``USERNAME_FIELD`` is not free text (an email, say)."""
        return phone

    def is_login_allowed(self, request: HttpRequest | None, user: User) -> bool:
        """Active users only; staff and superusers only with ``CALLAUTH_ALLOW_STAFF``.

        Caller ID can be spoofed, so a call is a restricted authenticator (NIST SP 800-63B).
        Also asked on every request of a session a call logged in, by
        ``CallAuthBackend.get_user``, which Django calls without a request: ``request`` is
        None then.
        """
        if not getattr(user, "is_active", True):
            return False
        privileged = getattr(user, "is_staff", False) or getattr(user, "is_superuser", False)
        return app_settings.ALLOW_STAFF or not privileged

    def is_phone_dormant(self, request: HttpRequest | None, link: CallAuthPhone) -> bool:
        """Whether ``link``'s phone has been silent too long to log in on its own (invariant 19).

        Operators hand a silent number to someone else, who could then call from it: a
        phone that neither logged in nor was added (or confirmed again) within
        ``CALLAUTH_PHONE_MAX_IDLE_DAYS`` proves nothing any more. Override to trust it
        anyway for some accounts, or for a browser your site recognises.
        """
        max_idle = app_settings.PHONE_MAX_IDLE_DAYS
        if max_idle is None:
            return False
        # Confirming the phone again (flows/linking.py) moves created_at: the later of the two counts.
        last_proof = max(link.created_at, link.last_login_at or link.created_at)
        return timezone.now() - last_proof >= timedelta(days=max_idle)

    def record_login(self, request: HttpRequest | None, user: User, phone: str) -> None:
        """Note that ``user`` logged in with ``phone`` (inside the login's transaction)."""
        CallAuthPhone.objects.filter(phone=phone).update(last_login_at=timezone.now())

    def may_link_phone(self, request: HttpRequest, user: User, phone: str) -> bool:
        """Whether ``user`` may add ``phone`` (asked after the call proved it is theirs)."""
        return True

    def may_remove_phone(self, request: HttpRequest, user: User, link: CallAuthPhone, *, remaining: int) -> bool:
        """Whether ``user`` may remove ``link``, leaving ``remaining`` phones.

        Never the last way to log in: an account without a usable password keeps its last
        phone. Override when your site has other ways in (social accounts, passkeys).
        """
        return remaining > 0 or user.has_usable_password()

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        """Where to go after a login without a safe ``next``."""
        return resolve_url(settings.LOGIN_REDIRECT_URL)


def get_adapter() -> CallAuthAdapter:
    adapter_class: type[CallAuthAdapter] = import_string(app_settings.ADAPTER)
    return adapter_class()
