"""When a page should poll a flow's status next: the ``poll_after`` of the status answer."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from ..conf import app_settings
from ..models import CallAuthFlow, FlowStatus

#: The first seconds of a flow, in which nobody has dialled yet, and how long its polls wait then.
EARLY_SECONDS = 10
EARLY_WAIT = 3.0
#: After this long the expected call is late: polls wait twice the interval until the deadline.
LATE_SECONDS = 60


def poll_after(flow: CallAuthFlow, now: datetime | None = None) -> float:
    """Seconds a client should wait before it polls ``flow``'s status again.

    People take 10-60 s to call once the number is shown (find the phone, unlock it, dial),
    so a poll in the first ``EARLY_SECONDS`` only finds the flow waiting: those polls wait
    ``EARLY_WAIT``. Around the expected call they come as often as the site allows, so
    the page shows the call within a second of it; a call later than ``LATE_SECONDS`` is
    rarer, and its polls wait twice as long. A report the site is verifying (a webhook
    whose check is due) is polled for as often as allowed. The wait never runs past the
    deadline (the page shows the expiry on time), and never goes under
    ``CALLAUTH_POLL_INTERVAL``, the floor ``slow_down`` holds clients to. A flow no longer
    waiting has nothing left to poll for: the interval, for a client that polls regardless.
    """
    now = now or timezone.now()
    interval = float(app_settings.POLL_INTERVAL)
    if flow.current_status(now) != FlowStatus.PENDING or flow.webhook_received_at is not None:
        return interval
    age = (now - flow.created_at).total_seconds()
    if age < EARLY_SECONDS:
        wait = EARLY_WAIT
    elif age < LATE_SECONDS:
        wait = interval
    else:
        wait = 2 * interval
    return max(interval, min(wait, (flow.expires_at - now).total_seconds()))
