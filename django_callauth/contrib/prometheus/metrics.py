"""The counters and the receivers that feed them from ``django_callauth.signals``.

Labels are bounded sets: provider names (the site's settings), failure reasons, rate-limit
scopes. Never a phone, a user or a flow id, which would make one time series per person.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.dispatch import Signal
from prometheus_client import Counter

from django_callauth import signals
from django_callauth.models import CallAuthFlow

FLOWS_STARTED = Counter("callauth_flows_started", "Numbers to call handed out.", ["provider"])
FLOWS_CONFIRMED = Counter("callauth_flows_confirmed", "Calls from the right phone reported in time.", ["provider"])
LOGINS = Counter("callauth_logins", "Users logged in by a confirmed call.", ["provider"])
FLOWS_FAILED = Counter(
    "callauth_flows_failed", "Flows that ended without a login, by reason (or expired).", ["provider", "reason"]
)
FAILOVERS = Counter(
    "callauth_failovers", "Starts handed to the next provider after one set up no call.", ["failed", "provider"]
)
RATE_LIMITED = Counter("callauth_rate_limited", "Starts refused by a cost limit, by scope.", ["scope"])


def _provider(flow: CallAuthFlow) -> str:
    return flow.provider


def on_started(sender: Any, flow: CallAuthFlow, **kwargs: Any) -> None:
    FLOWS_STARTED.labels(provider=_provider(flow)).inc()


def on_confirmed(sender: Any, flow: CallAuthFlow, **kwargs: Any) -> None:
    FLOWS_CONFIRMED.labels(provider=_provider(flow)).inc()


def on_logged_in(sender: Any, flow: CallAuthFlow, **kwargs: Any) -> None:
    LOGINS.labels(provider=_provider(flow)).inc()


def on_failed(sender: Any, flow: CallAuthFlow, reason: str, **kwargs: Any) -> None:
    FLOWS_FAILED.labels(provider=_provider(flow), reason=str(reason)).inc()


def on_failed_over(sender: Any, failed: str, provider: str, **kwargs: Any) -> None:
    FAILOVERS.labels(failed=failed, provider=provider).inc()


def on_rate_limited(sender: Any, scope: str, **kwargs: Any) -> None:
    RATE_LIMITED.labels(scope=scope).inc()


RECEIVERS: list[tuple[Signal, Callable[..., None]]] = [
    (signals.flow_started, on_started),
    (signals.flow_confirmed, on_confirmed),
    (signals.logged_in, on_logged_in),
    (signals.flow_failed, on_failed),
    (signals.failed_over, on_failed_over),
    (signals.rate_limited, on_rate_limited),
]


def connect() -> None:
    """Connect every receiver once (a ``dispatch_uid``: a second ``ready()`` adds nothing)."""
    for signal, receiver in RECEIVERS:
        signal.connect(receiver, sender=CallAuthFlow, dispatch_uid=f"callauth_prometheus.{receiver.__name__}")
