"""The events stream: under ASGI, a challenge page hears of its flow's changes as they commit.

``GET`` with the browser's session, exactly as ``status``: the flow is the one the session
holds, never one the request names (invariant 1). The answer is server-sent events: a
``retry`` line, then ``event: status`` with ``{"status", "expires_in"}``, then one more per
change of the flow, and a ``: keep-alive`` comment every ``HEARTBEAT_SECONDS`` so proxies
keep the connection open. The stream ends after a status that is not pending (the page
then finishes or reloads), at the flow's deadline, after ``MAX_STREAM_SECONDS``, or when
the broker breaks; a page whose stream ends without a final status polls ``status``
(challenge.js). It carries the status only: no number, phone or secret.

Under WSGI a stream would hold a worker thread for the whole wait, so the endpoint answers
``push_unavailable`` and the page polls; the challenge payload offers ``events_url`` only
where a stream would work (``offers_push``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync, sync_to_async
from django.contrib.sessions.backends.base import SessionBase
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections, connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone

from .. import errors, flows
from ..errors import ApiError
from ..flows import push
from ..models import CallAuthFlow, FlowPurpose, FlowStatus
from .app import HEADER, session_for

logger = logging.getLogger("django_callauth")

T = TypeVar("T")

#: How often an idle stream sends a comment: under the 60 s most proxies allow an idle response.
HEARTBEAT_SECONDS = 15.0
#: The longest a stream lives, whatever the flow's lifetime: a page whose stream ends polls.
MAX_STREAM_SECONDS = 600.0
#: How long EventSource waits before reconnecting on its own (the page's script polls instead).
RETRY_MS = 3000


def offers_push(request: HttpRequest, flow: CallAuthFlow) -> bool:
    """Whether the page of ``flow`` may follow it by a stream rather than by polling."""
    return isinstance(request, ASGIRequest) and push.broker() is not None and push.pushable(flow)


@dataclass(frozen=True)
class _State:
    """What a stream sends of its flow."""

    status: str
    seconds_left: float

    def event(self) -> str:
        data = json.dumps({"status": self.status, "expires_in": max(0, int(self.seconds_left))})
        return f"event: status\ndata: {data}\n\n"


async def _off_the_request(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in the one thread the process shares for this, not in the request's own.

    Django runs an ASGI request's synchronous code in a thread of the request's own, kept
    until the request ends (for a stream, minutes), and a database connection that thread
    opened stays open with it: 5,000 waiting pages would hold 5,000 connections (the pool
    ran dry at the ninth stream, measured). A stream's reads are few and short, so they run
    in the thread asgiref keeps for thread-sensitive code outside any request (in a test,
    the test's own thread, as always), and each releases its connection as a finished
    request does. (The request's own thread still exists, made by the middleware's
    adaptation; it stays idle.)
    """
    token = SyncToAsync.thread_sensitive_context.set(None)  # type: ignore[arg-type]
    try:
        return await sync_to_async(_released, thread_sensitive=True)(func, *args)
    finally:
        SyncToAsync.thread_sensitive_context.reset(token)


def _released(func: Callable[..., T], *args: Any) -> T:
    try:
        return func(*args)
    finally:
        # As Django does when a request finishes; never inside a transaction (a test's).
        if not any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
            close_old_connections()


def _read(flow_id: str, purpose: FlowPurpose) -> tuple[CallAuthFlow | None, _State | None]:
    """The flow as the database says now, brought up to date (expired at its deadline) as a poll does."""
    flow = flows.flow_by_id(flow_id, purpose)
    if flow is None:
        return None, None
    flows.refresh_flow(flow)
    seconds_left = (flow.expires_at - timezone.now()).total_seconds()
    return flow, _State(flow.current_status(), seconds_left)


async def _stream(broker: push.Broker, flow_id: str, purpose: FlowPurpose) -> AsyncIterator[str]:
    """The events of one flow until it ends.

    Subscribed at the stream's start, before its first ``await``, and dropped in ``finally``:
    a stream never iterated (its client gone before the body) holds nothing. Subscribed
    before the row is read, so a change committed after that read wakes the stream.
    """
    try:
        subscription = broker.subscribe(flow_id)
    except push.BrokerUnavailable as exc:
        logger.warning("Push: no stream for a flow (%s); its page polls", exc)
        return
    cut = ""  # why the stream ends before its flow did, if it does: the page polls from then on
    try:
        _flow, state = await _off_the_request(_read, flow_id, purpose)
        if state is None:
            cut = "the flow is gone"
            return
        began = written = time.monotonic()
        deadline = began + max(state.seconds_left, 1.0)
        yield f"retry: {RETRY_MS}\n\n" + state.event()
        while state.status == FlowStatus.PENDING:
            now = time.monotonic()
            if now - began >= MAX_STREAM_SECONDS:
                cut = f"it lived {MAX_STREAM_SECONDS:.0f} s"
                return
            # Wake at the deadline, to say the flow expired; a broker that reaches only this
            # process makes the stream read its row as often as a page would poll.
            timeout = min(HEARTBEAT_SECONDS - (now - written), deadline - now)
            if not broker.shared:
                timeout = min(timeout, push.RECHECK_SECONDS)
            woken = await subscription.wait(max(0.05, timeout))
            if subscription.broken:
                cut = "the broker broke"
                return
            now = time.monotonic()
            if woken or not broker.shared or now >= deadline:
                _flow, latest = await _off_the_request(_read, flow_id, purpose)
                if latest is None:
                    cut = "the flow is gone"
                    return
                if latest.status != state.status:
                    yield latest.event()
                    written = now
                state = latest
                # At least a second: a flow still pending at its deadline (its verifying
                # check in the grace) is read again then, not in a busy loop.
                deadline = now + max(latest.seconds_left, 1.0)
            if now - written >= HEARTBEAT_SECONDS:
                yield ": keep-alive\n\n"
                written = now
    finally:
        broker.unsubscribe(subscription)
        if cut:  # a client that went away is no cut: nothing is logged for it
            logger.info("Flow %s: its stream ended before the flow did (%s); the page polls", flow_id, cut)


def _refused(error: ApiError) -> HttpResponse:
    # JSON whatever was asked: EventSource shows no body, and a script reads the code.
    return JsonResponse(error.json(), status=error.status)


async def _events(
    request: HttpRequest, session: SessionBase, purpose: FlowPurpose
) -> HttpResponse | StreamingHttpResponse:
    if request.method != "GET":
        response = _refused(errors.METHOD_NOT_ALLOWED.format(methods="GET"))
        response["Allow"] = "GET"
        return response
    broker = push.broker() if isinstance(request, ASGIRequest) else None
    if broker is None:
        return _refused(errors.PUSH_UNAVAILABLE)
    no_flow = errors.NO_LINK_FLOW if purpose == FlowPurpose.LINK else errors.NO_LOGIN_FLOW
    flow_id = await _off_the_request(flows.flow_id_in, session, purpose)
    if flow_id is None:
        return _refused(no_flow)
    flow, _state = await _off_the_request(_read, flow_id, purpose)
    if flow is None:
        return _refused(no_flow)
    if not push.pushable(flow) or broker.holds(flow_id) >= push.MAX_STREAMS_PER_FLOW:
        return _refused(errors.PUSH_UNAVAILABLE)
    try:
        await broker.connect()
    except push.BrokerUnavailable as exc:
        logger.warning("Push: no stream for a flow (%s); its page polls", exc)
        return _refused(errors.PUSH_UNAVAILABLE)
    stream = StreamingHttpResponse(_stream(broker, flow_id, purpose), content_type="text/event-stream; charset=utf-8")
    stream["Cache-Control"] = "no-cache, no-store"
    stream["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return stream


async def events(
    request: HttpRequest, purpose: FlowPurpose = FlowPurpose.LOGIN
) -> HttpResponse | StreamingHttpResponse:
    """The browser's stream, with its session cookie (``callauth:events``, ``callauth:link_events``)."""
    return await _events(request, request.session, purpose)


async def app_events(
    request: HttpRequest, purpose: FlowPurpose = FlowPurpose.LOGIN
) -> HttpResponse | StreamingHttpResponse:
    """An app client's stream, with its session in ``X-Session-Token`` (``callauth:app_events``)."""
    return await _events(request, session_for(request.headers.get(HEADER)), purpose)
