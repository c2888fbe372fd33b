"""Signals sent along a flow's life. Receivers are connected by projects, never here.

Every signal is sent with ``sender=CallAuthFlow``; those about one flow also carry
``flow=<the flow>``. They are sent robustly: an exception in a project's receiver is
logged and never turns a login into a 500 page, nor undoes what already happened.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

#: A number to call was handed out. Also: ``request``.
flow_started = Signal()
#: A provider of a ``CALLAUTH_PROVIDER`` list failed to start the flow in a way that proves
#: it set up no call, and the next one is asked. Also: ``request``, ``failed`` (the name of
#: the provider that failed), ``provider`` (the name of the one asked next), ``error`` (the
#: ``ProviderError``, whose text carries no secret).
failed_over = Signal()
#: The provider reported a call from the requested phone, in time.
flow_confirmed = Signal()
#: The flow ended without a login. Also: ``reason`` (a ``FailureReason`` value or ``"expired"``).
flow_failed = Signal()
#: A user logged in by this flow. Also: ``request``, ``user``.
logged_in = Signal()
#: A phone was added to an account by a confirmed call. Also: ``request``, ``user``, ``phone``.
phone_linked = Signal()
#: A phone was removed from an account. Also: ``request``, ``user``, ``phone``. No ``flow``.
phone_removed = Signal()
#: A start was refused by a cost limit before reaching the provider. Also: ``request``,
#: ``scope`` (a key of ``CALLAUTH_RATE_LIMITS``; ``"global"`` whenever the site's budget refused).
#: No ``flow``: none was created.
rate_limited = Signal()
#: A provider's balance was seen below its ``CALLAUTH_LOW_BALANCE`` threshold (by
#: ``callauth_providers``). Also: ``provider`` (its name), ``balance`` (a
#: ``ProviderBalance``), ``threshold`` (a ``Decimal``). No ``flow``.
provider_balance_low = Signal()
#: A flow was started for a phone of ``CALLAUTH_REVIEW_PHONES``: it logs in without a call
#: (providers/review.py). Also: ``request``. Its ``flow.provider`` is ``"review"``.
review_phone_used = Signal()


def send_robust(signal: Signal, **kwargs: Any) -> None:
    """Send ``signal`` from ``CallAuthFlow``; what a receiver raises is logged, never raised.

    Django's ``send_robust`` logs each failing receiver, with its traceback, to the
    ``django.dispatch`` logger at ERROR.
    """
    from .models import CallAuthFlow

    signal.send_robust(sender=CallAuthFlow, **kwargs)
