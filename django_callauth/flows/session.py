"""Which flow a browser holds: the flow ids in its session, one per purpose (invariant 1).

A flow is found only through the session of the browser that started it, and is put into
a session whose key is new (invariant 13).
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from ..models import CallAuthFlow, FlowPurpose
from . import cache

SESSION_FLOW_KEY = "_callauth_flow_id"


#: One session key per purpose: a flow adding a phone is never found where a login is looked for.
SESSION_KEYS: dict[str, str] = {FlowPurpose.LOGIN: SESSION_FLOW_KEY, FlowPurpose.LINK: "_callauth_link_flow_id"}


def flow_from_session(
    session: SessionBase, purpose: FlowPurpose = FlowPurpose.LOGIN, *, cached: bool = False
) -> CallAuthFlow | None:
    """The flow of ``purpose`` this browser started, if any (invariant 1).

    ``cached``: as last stored in the cache, for the pages that only show the state (the
    status poll); whatever decides reads the database.
    """
    flow_id = flow_id_in(session, purpose)
    return None if flow_id is None else flow_by_id(flow_id, purpose, cached=cached)


def flow_id_in(session: SessionBase, purpose: FlowPurpose = FlowPurpose.LOGIN) -> str | None:
    """The id of the flow of ``purpose`` this browser started, as its session holds it (unchecked)."""
    flow_id = session.get(SESSION_KEYS[purpose])
    return flow_id if isinstance(flow_id, str) else None


def flow_by_id(flow_id: str, purpose: FlowPurpose, *, cached: bool = False) -> CallAuthFlow | None:
    """The flow ``flow_id`` of ``purpose``; only for an id a session holds (``flow_id_in``)."""
    if cached:
        flow = cache.load(flow_id)
        if flow is not None:
            return flow if flow.purpose == purpose else None
    try:
        flow = CallAuthFlow.objects.filter(pk=flow_id, purpose=purpose).first()
    except ValidationError:  # not a UUID: an old or foreign session value
        return None
    if flow is not None and cached:
        cache.fill(flow)
    return flow


def forget_flow(session: SessionBase, purpose: FlowPurpose = FlowPurpose.LOGIN) -> None:
    session.pop(SESSION_KEYS[purpose], None)


def bind(request: HttpRequest, flow: CallAuthFlow) -> None:
    """Put ``flow`` in a session whose key is new, so only this browser holds it (invariant 13).

    A session key planted beforehand (a sibling subdomain's cookie, a shared computer) is
    deleted with its session: its holder can never finish the login this browser started.
    """
    request.session.cycle_key()
    request.session[SESSION_KEYS[flow.purpose]] = str(flow.pk)
