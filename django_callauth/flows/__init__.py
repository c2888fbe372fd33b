"""One flow's life, free of HTTP: which flow a browser holds, starting it, learning of the call.

The web layer (``django_callauth.web``) calls these; nothing here answers a request. The
names below are the layer's interface; the modules hold the rest.
"""

from .polling import poll_after
from .refresh import max_checks, refresh_flow, verify_report
from .reports import ReportOutcome, apply_report, confirmed_caller, handle_callback, handle_webhook, simulate_call
from .session import (
    SESSION_FLOW_KEY,
    SESSION_KEYS,
    flow_by_id,
    flow_from_session,
    flow_id_in,
    flow_to_poll,
    forget_flow,
)
from .start import start_flow

__all__ = [
    "SESSION_FLOW_KEY",
    "SESSION_KEYS",
    "ReportOutcome",
    "apply_report",
    "confirmed_caller",
    "flow_by_id",
    "flow_from_session",
    "flow_id_in",
    "flow_to_poll",
    "forget_flow",
    "handle_callback",
    "handle_webhook",
    "max_checks",
    "poll_after",
    "refresh_flow",
    "simulate_call",
    "start_flow",
    "verify_report",
]
