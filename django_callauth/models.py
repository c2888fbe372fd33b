"""The pending login flow with its state transitions, and the phone ↔ user link.

Every state change is a conditional ``UPDATE … WHERE status = <expected>`` that must
affect exactly one row (docs/security.rst, invariant 4): concurrent webhooks, polls and
finishes race on the database, and at most one of them wins. The methods return
whether this caller won; the in-memory instance then holds the row as stored either way
(``CallAuthFlow._update`` says how without reading it back after a win). The status
changes a flow may make are listed once, in ``ALLOWED_TRANSITIONS``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .conf import app_settings
from .types import User


class FlowStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the call")
    CONFIRMED = "confirmed", _("Call confirmed")
    EXPIRED = "expired", _("Expired")
    FAILED = "failed", _("Failed")
    USED = "used", _("Used to log in")


#: Every change of a flow's stored status, and why it exists. ``CallAuthFlow._transition``
#: refuses any other; tests/test_transitions.py shows that no method makes any other.
ALLOWED_TRANSITIONS: frozenset[tuple[FlowStatus, FlowStatus]] = frozenset(
    {
        # The provider reported a call from the requested phone before the deadline (``confirm``).
        (FlowStatus.PENDING, FlowStatus.CONFIRMED),
        # A call from another phone, a start no provider could make, or a newer flow started
        # in the same browser (``fail``): the flow can never be confirmed any more.
        (FlowStatus.PENDING, FlowStatus.FAILED),
        # The time to call is up with no call confirmed (``expire``): nothing left to wait for.
        (FlowStatus.PENDING, FlowStatus.EXPIRED),
        # A finish took the confirmed call, once, for its purpose (``claim_for_login``,
        # ``claim_for_link``): of concurrent finishes, exactly one wins (invariant 4).
        (FlowStatus.CONFIRMED, FlowStatus.USED),
        # The finish that took the call could not use it: no account, the adapter refused, or
        # the phone is another account's (backends.py, flows/linking.py: ``fail(from_status=USED)``,
        # in the claim's transaction). Failing it says why, and nothing can finish it again.
        (FlowStatus.USED, FlowStatus.FAILED),
    }
)

#: What ``current_status`` may show instead of the stored status; never stored. A pending flow
#: past its deadline, and a confirmed one past ``complete_by``, can no longer be finished:
#: clients see them expired before anything (a poll's ``expire``, the cleanup) touches the row.
SHOWN_EXPIRED: frozenset[FlowStatus] = frozenset({FlowStatus.PENDING, FlowStatus.CONFIRMED})


class TransitionNotAllowed(Exception):
    """A status change missing from ``ALLOWED_TRANSITIONS`` was asked for: a bug, never a race."""


#: The longest ``next`` URL a flow keeps (a longer one is not safe to redirect to anyway).
NEXT_URL_MAX_LENGTH = 2000


class FlowPurpose(models.TextChoices):
    """What a confirmed call is for. A flow of one purpose can never be finished as the other."""

    LOGIN = "login", pgettext_lazy("flow purpose", "Log in")
    LINK = "link", pgettext_lazy("flow purpose", "Add a phone to an account")


class FailureReason(models.TextChoices):
    PHONE_MISMATCH = "phone_mismatch", _("Call from a different phone")
    PROVIDER_ERROR = "provider_error", _("Provider error at start")
    NO_ACCOUNT = "no_account", _("No account for this phone")
    NOT_ALLOWED = "not_allowed", _("Account may not log in by call")
    CANCELLED = "cancelled", _("Replaced by a newer flow")
    PHONE_TAKEN = "phone_taken", _("Phone already linked to another account")
    DORMANT = "dormant", _("Phone unused for too long to log in on its own")


#: What a copy of a flow from the state cache holds instead of its webhook secret's hash
#: (flows/cache.py): only that there is one.
CACHED_SECRET_MARK = "*"


#: Sent after a flow's row changed (``flow``: the instance, as stored). The state cache
#: listens (connected in ``apps.ready``), so models know nothing of it: the layers stay one way.
flow_changed = Signal()


class CallAuthFlow(models.Model):
    """One attempt to log in by calling a number, owned by one browser session."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phone = models.CharField(_("phone"), max_length=16, help_text=_("The phone to log in, E.164."))
    call_to = models.CharField(_("number to call"), max_length=16, blank=True)
    provider = models.CharField(_("provider"), max_length=100)
    provider_id = models.CharField(_("provider id"), max_length=64, blank=True)
    # The provider asked first: a flow another provider started after it is a failover (stats.py).
    # Blank on flows created before it was recorded, which are then counted as no failover.
    first_provider = models.CharField(_("first provider asked"), max_length=100, blank=True, editable=False)
    # Only webhook-mode flows have a secret; it is stored hashed (guards/webhook_secrets.py).
    webhook_secret_hash = models.CharField(max_length=64, blank=True, editable=False)
    purpose = models.CharField(_("purpose"), max_length=8, choices=FlowPurpose.choices, default=FlowPurpose.LOGIN)
    status = models.CharField(_("status"), max_length=16, choices=FlowStatus.choices, default=FlowStatus.PENDING)
    failure_reason = models.CharField(_("failure reason"), max_length=32, choices=FailureReason.choices, blank=True)
    caller = models.CharField(_("reported caller"), max_length=16, blank=True)
    next_url = models.CharField(_("next URL"), max_length=NEXT_URL_MAX_LENGTH, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    webhook_received_at = models.DateTimeField(_("webhook received"), null=True, blank=True)
    last_checked_at = models.DateTimeField(_("last check"), null=True, blank=True)
    checks_made = models.PositiveIntegerField(_("checks made"), default=0, editable=False)
    # Of those, the checks a press of "I have called" asked for while no report was waiting
    # (webhook and callback modes), which flows.CALLED_CHECKS bounds.
    called_checks = models.PositiveSmallIntegerField(_("checks the person asked for"), default=0, editable=False)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("call login")
        verbose_name_plural = _("call logins")
        ordering = ["-created_at"]
        # Every query the app makes by something other than the primary key:
        indexes = [
            # callauth_cleanup: flows created before a cutoff, deleted in batches; the admin's list
            # and its numbers page (stats.py: a window of days, see docs/benchmarks.rst).
            models.Index(fields=["created_at"], name="callauth_flow_created"),
            # A provider's account-wide callback finds the flow by the provider's own id.
            models.Index(fields=["provider", "provider_id"], name="callauth_flow_provider_id"),
            # The sandbox's simulated call finds the live flow by the number that was called.
            models.Index(fields=["call_to", "status"], name="callauth_flow_call_to"),
        ]

    def __str__(self) -> str:
        return f"{self.phone} ({self.status})"

    # -- derived state -------------------------------------------------------

    def current_status(self, now: datetime | None = None) -> FlowStatus:
        """The status a client sees: a flow of ``SHOWN_EXPIRED`` that can no longer be finished is expired.

        Pending past its deadline (``expires_at``), or confirmed but not finished in time
        (``complete_by``). Only a pending flow is ever stored expired (``expire``): a
        confirmed one stays confirmed, and ``_claim`` refuses it by the same deadline.
        """
        now = now or timezone.now()
        if self.status == FlowStatus.PENDING and now >= self.expires_at:
            return FlowStatus.EXPIRED
        if self.status == FlowStatus.CONFIRMED and now >= self.complete_by:
            return FlowStatus.EXPIRED
        return FlowStatus(self.status)

    @property
    def complete_by(self) -> datetime:
        """Until when a confirmed flow may be used to log in."""
        return (self.confirmed_at or self.expires_at) + timedelta(seconds=app_settings.COMPLETE_WINDOW)

    @property
    def lifetime(self) -> int:
        """Seconds the flow's number was handed out for, whatever the settings say now."""
        return int((self.expires_at - self.created_at).total_seconds())

    def expires_in(self, now: datetime | None = None) -> int:
        now = now or timezone.now()
        return max(0, int((self.expires_at - now).total_seconds()))

    @property
    def uses_webhook(self) -> bool:
        return bool(self.webhook_secret_hash)

    # -- transitions -----------------------------------------------------------

    def _transition(
        self, source: FlowStatus, target: FlowStatus, condition: Q | None = None, /, **changes: Any
    ) -> bool:
        """``source`` → ``target`` if the row is still ``source`` (and matches ``condition``).

        Raises ``TransitionNotAllowed``, before touching the database, for a change that
        ``ALLOWED_TRANSITIONS`` does not list.
        """
        if (source, target) not in ALLOWED_TRANSITIONS:
            raise TransitionNotAllowed(f"a flow may not go from {source!r} to {target!r}")
        return self._update(Q(status=source) & (condition or Q()), status=target, **changes)

    def _update_while(
        self, status: FlowStatus, condition: Q, /, increments: tuple[str, ...] = (), **changes: Any
    ) -> bool:
        """Change fields other than the status of a flow that is still ``status``."""
        if "status" in changes:
            raise TransitionNotAllowed("a status change goes through _transition")
        return self._update(Q(status=status) & condition, increments, **changes)

    def _update(self, condition: Q, /, increments: tuple[str, ...] = (), **changes: Any) -> bool:
        """Apply ``changes`` (and add one to each field of ``increments``) if the row matches ``condition``.

        First as a compare-and-set: the row must also still hold every value this instance
        holds. When that wins, the row is now exactly the instance with the changes, so they
        are set on it and nothing is read back (one statement per transition). When it
        loses (the condition fails, or the instance was stale: another process changed the
        row since it was read, or it came from the state cache), the update is tried as
        before, on the condition alone, and the row read back, won or lost. Either way the
        instance ends as the row stands, and ``flow_changed`` carries it only after a win:
        the state cache stores what the database says (docs/security.rst, invariant 20).
        """
        rows = type(self)._default_manager.filter(pk=self.pk)
        literal = {name: getattr(self, name) + 1 for name in increments}
        if rows.filter(condition, self._as_read()).update(**changes, **literal) == 1:
            for name, value in {**changes, **literal}.items():
                setattr(self, name, value)
            won = True
        else:
            counted = {name: F(name) + 1 for name in increments}
            won = rows.filter(condition).update(**changes, **counted) == 1
            self.refresh_from_db()
        if won:
            flow_changed.send(sender=type(self), flow=self)  # the state cache follows it (flows/cache.py)
        return won

    def _as_read(self) -> Q:
        """The row as this instance holds it: every stored value but the primary key.

        A copy from the state cache holds only whether there is a webhook secret (its hash
        stays in the database, flows/cache.py): it is compared as that.
        """
        held = Q()
        for field in self._meta.concrete_fields:
            if field.primary_key:
                continue
            value = getattr(self, field.attname)
            if field.attname == "webhook_secret_hash" and value == CACHED_SECRET_MARK:
                held &= ~Q(webhook_secret_hash="")
            else:
                held &= Q(**{field.attname: value})
        return held

    def set_started(self, *, call_to: str, provider_id: str) -> bool:
        """Record the provider's number and id on a flow created before asking it."""
        return self._update_while(FlowStatus.PENDING, Q(provider_id=""), call_to=call_to, provider_id=provider_id)

    def hand_to(self, provider: str, *, webhook_secret_hash: str, expires_at: datetime) -> bool:
        """Give a flow that no provider started yet to another provider (failover, flows/start.py)."""
        return self._update_while(
            FlowStatus.PENDING,
            Q(provider_id=""),
            provider=provider,
            webhook_secret_hash=webhook_secret_hash,
            expires_at=expires_at,
        )

    def confirm(self, caller: str, *, reported_at: datetime | None = None) -> bool:
        """Pending → confirmed, only if the report came before the deadline.

        ``reported_at`` is when the provider told us (a webhook's arrival): a call made
        in time stays in time even when its verification comes a moment later.
        """
        now = timezone.now()
        in_time = Q(expires_at__gt=reported_at or now)
        return self._transition(FlowStatus.PENDING, FlowStatus.CONFIRMED, in_time, caller=caller, confirmed_at=now)

    def fail(self, reason: FailureReason, *, caller: str = "", from_status: FlowStatus = FlowStatus.PENDING) -> bool:
        """``from_status`` → failed: pending (never confirmed), or used (claimed, but unusable)."""
        return self._transition(
            from_status,
            FlowStatus.FAILED,
            failure_reason=reason,
            caller=caller or self.caller,
            finished_at=timezone.now(),
        )

    def expire(self) -> bool:
        now = timezone.now()
        return self._transition(FlowStatus.PENDING, FlowStatus.EXPIRED, Q(expires_at__lte=now), finished_at=now)

    def claim_for_login(self) -> bool:
        """Confirmed → used, for a login flow; exactly one finisher wins (invariant 4)."""
        return self._claim(FlowPurpose.LOGIN)

    def claim_for_link(self) -> bool:
        """Confirmed → used, for a flow adding a phone to an account; exactly one finisher wins."""
        return self._claim(FlowPurpose.LINK)

    def _claim(self, purpose: FlowPurpose) -> bool:
        now = timezone.now()
        deadline = now - timedelta(seconds=app_settings.COMPLETE_WINDOW)
        return self._transition(
            FlowStatus.CONFIRMED,
            FlowStatus.USED,
            Q(confirmed_at__gt=deadline, purpose=purpose),
            finished_at=now,
        )

    def set_user(self, user: User) -> None:
        type(self)._default_manager.filter(pk=self.pk).update(user=user)
        self.user = user
        flow_changed.send(sender=type(self), flow=self)

    def note_webhook(self) -> bool:
        """Remember that the provider said a call came (to be verified by ``check``)."""
        return self._update_while(
            FlowStatus.PENDING, Q(webhook_received_at__isnull=True), webhook_received_at=timezone.now()
        )

    def note_callback(self) -> bool:
        """Remember that an account-wide callback said a call came, however often it did.

        Unlike ``note_webhook`` each callback moves the time on: one that arrives while a
        check is under way is then not forgotten with the report that check contradicts.
        """
        return self._update_while(FlowStatus.PENDING, Q(), webhook_received_at=timezone.now())

    def forget_callback(self, received_at: datetime) -> bool:
        """Go back to waiting after a check contradicted the callback received at ``received_at``.

        A callback that came since (a later time) stays, to be checked in its turn.
        """
        return self._update_while(FlowStatus.PENDING, Q(webhook_received_at=received_at), webhook_received_at=None)

    def claim_check(self, interval: int, max_checks: int, *, called_bound: int | None = None) -> bool:
        """Take the right to ask the provider's ``check`` now: at most once per ``interval``,
        and at most ``max_checks`` times in all.

        ``called_bound``: the check is asked for by "I have called" alone, and such checks
        may be at most this many (``called_checks``). The conditional update makes every
        bound hold across processes, however many browsers poll.
        """
        now = timezone.now()
        due = Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=now - timedelta(seconds=interval))
        condition = Q(checks_made__lt=max_checks) & due
        counts: tuple[str, ...] = ("checks_made",)
        if called_bound is not None:
            condition &= Q(called_checks__lt=called_bound)
            counts += ("called_checks",)
        return self._update_while(FlowStatus.PENDING, condition, increments=counts, last_checked_at=now)


class CallAuthPhone(models.Model):
    """A phone that logs in one user; works with any user model."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="callauth_phones", verbose_name=_("user")
    )
    phone = models.CharField(_("phone"), max_length=16, unique=True, help_text=_("E.164, for example +79001234567."))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_login_at = models.DateTimeField(_("last login by call"), null=True, blank=True)

    class Meta:
        verbose_name = _("phone")
        verbose_name_plural = _("phones")

    def __str__(self) -> str:
        return self.phone

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .phones import InvalidPhoneNumber, normalize_phone

        if not self.phone:
            # Blank is reported by clean_fields(); a form whose phone field already
            # failed leaves it blank here, and must not get a second error for it.
            return
        try:
            self.phone = normalize_phone(self.phone)
        except InvalidPhoneNumber as exc:
            raise ValidationError({"phone": exc.message}) from None
