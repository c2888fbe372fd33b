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


def flow_from_session(session: SessionBase, purpose: FlowPurpose = FlowPurpose.LOGIN) -> CallAuthFlow | None:
    """The flow of ``purpose`` this browser started, if any (invariant 1), from the database."""
    flow_id = flow_id_in(session, purpose)
    return None if flow_id is None else _stored(flow_id, purpose)


def flow_id_in(session: SessionBase, purpose: FlowPurpose = FlowPurpose.LOGIN) -> str | None:
    """The id of the flow of ``purpose`` this browser started, as its session holds it (unchecked)."""
    flow_id = session.get(SESSION_KEYS[purpose])
    return flow_id if isinstance(flow_id, str) else None


def flow_to_poll(
    session: SessionBase, purpose: FlowPurpose = FlowPurpose.LOGIN
) -> tuple[CallAuthFlow | None, int | None]:
    """For the status poll: the flow as ``flow_from_session`` finds it, and ``slow_down``'s wait.

    The flow as last stored in the cache, for a poll only shows the state (whatever decides
    reads the database); the poll is counted for ``slow_down`` in the same round trip
    (cache.load_polled). A poll it refuses reads nothing more: the flow is then None.
    """
    flow_id = flow_id_in(session, purpose)
    if flow_id is None:
        return None, None
    flow, wait = cache.load_polled(flow_id)
    if wait is not None:
        return None, wait
    if flow is not None:
        return (flow if flow.purpose == purpose else None), None
    return _filled(flow_id, purpose), None


def flow_by_id(flow_id: str, purpose: FlowPurpose) -> CallAuthFlow | None:
    """For an events stream: the flow ``flow_id`` (an id a session holds) as last stored in the cache.

    Like a poll's read, without counting it: a stream reads only when told of a change.
    """
    flow = cache.load(flow_id)
    if flow is not None:
        return flow if flow.purpose == purpose else None
    return _filled(flow_id, purpose)


def _filled(flow_id: str, purpose: FlowPurpose) -> CallAuthFlow | None:
    """The row, read on a cache miss, and copied into the cache for the next reader."""
    flow = _stored(flow_id, purpose)
    if flow is not None:
        cache.fill(flow)
    return flow


def _stored(flow_id: str, purpose: FlowPurpose) -> CallAuthFlow | None:
    try:
        return CallAuthFlow.objects.filter(pk=flow_id, purpose=purpose).first()
    except ValidationError:  # not a UUID: an old or foreign session value
        return None


def forget_flow(session: SessionBase, purpose: FlowPurpose = FlowPurpose.LOGIN) -> None:
    session.pop(SESSION_KEYS[purpose], None)


def bind(request: HttpRequest, flow: CallAuthFlow) -> None:
    """Put ``flow`` in a session whose key is new, so only this browser holds it (invariant 13).

    A session key planted beforehand (a sibling subdomain's cookie, a shared computer) is
    deleted with its session: its holder can never finish the login this browser started.
    """
    request.session.cycle_key()
    request.session[SESSION_KEYS[flow.purpose]] = str(flow.pk)
