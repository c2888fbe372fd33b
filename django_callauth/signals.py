"""Signals sent along a flow's life. Receivers are connected by projects, never here.

Every signal is sent with ``sender=CallAuthFlow`` and ``flow=<the flow>``.
"""

from django.dispatch import Signal

#: A number to call was handed out. Also: ``request``.
flow_started = Signal()
#: The provider reported a call from the requested phone, in time.
flow_confirmed = Signal()
#: The flow ended without a login. Also: ``reason`` (a ``FailureReason`` value or ``"expired"``).
flow_failed = Signal()
#: A user logged in by this flow. Also: ``request``, ``user``.
logged_in = Signal()
