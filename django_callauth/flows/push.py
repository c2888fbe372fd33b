"""Telling the pages that wait on a flow that its state changed: the push channel's broker.

Under ASGI a challenge page holds one events stream (web/events.py) instead of polling.
Every transition of a flow (``models.flow_changed``) is published by flow id once its
transaction commits, and every process holding a stream for that flow wakes it; the
stream then reads the row and sends what the database says (invariant 20): a message
carries no state, only "look again", so a lost or duplicated one can never mislead.

Two brokers, chosen by ``CALLAUTH_PUSH`` (docs/benchmarks.rst, "Push engines", has the
measurements behind the default):

* ``RedisBroker`` (the default where ``CALLAUTH_CACHE`` is Django's Redis cache): one
  ``PUBLISH`` per committed transition; in each ASGI process one connection subscribed
  to one channel, fanning out to that process's streams. It reaches every worker and host.
* ``ProcessBroker`` (where the cache is per-process: the development server): streams of
  this process only; a transition committed elsewhere (a webhook served by another worker,
  ``callauth_simulate_call``) is seen because such streams also read their row every
  ``RECHECK_SECONDS``, as a poll would.

A broker that fails never loses a login: a publish that fails is logged, and a
subscriber that loses its connection wakes every stream as *broken*; they end, and their
pages fall back to polling (challenge.js).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction

from ..conf import app_settings
from ..models import CallAuthFlow
from ..providers import provider_named

logger = logging.getLogger("django_callauth")

#: How often a stream of the per-process broker reads its row anyway (a change made in
#: another process is never published to it): the page's own poll interval.
RECHECK_SECONDS = 1.0
#: How long a stream waits for the Redis subscription before the page is told to poll.
SUBSCRIBE_TIMEOUT_SECONDS = 2.0
#: The most streams one flow may hold in a process: a few tabs, never a session opening thousands.
MAX_STREAMS_PER_FLOW = 5
#: How idle the subscriber's connection may be before it is PINGed.
HEALTH_CHECK_SECONDS = 15.0
#: After a publish failed, how long publishes are skipped (each would wait for a timeout).
BACK_OFF_SECONDS = 5.0


class BrokerUnavailable(Exception):
    """The broker cannot take a subscription now: the page polls instead."""


@dataclass(eq=False)
class Subscription:
    """One stream's wait for its flow: woken when the flow changed, or when the broker broke."""

    flow_id: str
    loop: asyncio.AbstractEventLoop
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    broken: bool = False

    def wake(self, *, broken: bool = False) -> None:
        """Wake the stream; call in the subscription's own event loop."""
        self.broken = self.broken or broken
        self.woken.set()

    async def wait(self, timeout: float) -> bool:
        """Whether the stream was woken within ``timeout`` seconds (the flag is cleared for the next wait)."""
        try:
            await asyncio.wait_for(self.woken.wait(), timeout)
        except asyncio.TimeoutError:  # noqa: UP041  (not the builtin TimeoutError on Python 3.10)
            return False
        self.woken.clear()
        return True


class _Waiters:
    """The streams of this process, by flow id; safe to wake from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_flow: dict[str, set[Subscription]] = {}

    def add(self, subscription: Subscription) -> None:
        with self._lock:
            waiting = self._by_flow.setdefault(subscription.flow_id, set())
            if len(waiting) >= MAX_STREAMS_PER_FLOW:
                raise BrokerUnavailable(f"the flow holds {len(waiting)} streams here already")
            waiting.add(subscription)

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            waiting = self._by_flow.get(subscription.flow_id, set())
            waiting.discard(subscription)  # once: a stream may be dropped twice as it ends
            if not waiting:
                self._by_flow.pop(subscription.flow_id, None)

    def wake(self, flow_id: str | None, *, broken: bool = False) -> None:
        """Wake the streams of ``flow_id`` (every stream when None), each in its own loop."""
        with self._lock:
            if flow_id is None:
                chosen = [s for waiting in self._by_flow.values() for s in waiting]
            else:
                chosen = list(self._by_flow.get(flow_id, ()))
        for subscription in chosen:
            try:
                subscription.loop.call_soon_threadsafe(partial(subscription.wake, broken=broken))
            except RuntimeError:  # its loop is closed: the stream has gone with it
                self.remove(subscription)

    def holds(self, flow_id: str) -> int:
        with self._lock:
            return len(self._by_flow.get(flow_id, ()))

    def count(self) -> int:
        """How many streams this process holds (an operator's gauge; every ended stream is dropped)."""
        with self._lock:
            return sum(len(waiting) for waiting in self._by_flow.values())


class Broker:
    """Where committed transitions are published and streams wait for them."""

    #: Whether a publish reaches every process: if not, streams read their row every ``RECHECK_SECONDS``.
    shared: bool = False

    def __init__(self) -> None:
        self.waiters = _Waiters()

    def publish(self, flow_id: str) -> None:
        raise NotImplementedError

    async def connect(self) -> None:
        """Make sure this process can take subscriptions now; ``BrokerUnavailable`` if not."""

    def subscribe(self, flow_id: str) -> Subscription:
        """Wait for ``flow_id``'s changes in the running loop; ``BrokerUnavailable`` if that cannot be.

        Never awaits: a stream subscribes at its start, before any ``await``, so whatever
        ends it (a disconnect, an error) drops the subscription in its ``finally``.
        """
        subscription = Subscription(flow_id, asyncio.get_running_loop())
        self.waiters.add(subscription)
        return subscription

    def holds(self, flow_id: str) -> int:
        """How many streams of ``flow_id`` this process holds."""
        return self.waiters.holds(flow_id)

    def unsubscribe(self, subscription: Subscription) -> None:
        self.waiters.remove(subscription)


class ProcessBroker(Broker):
    """Streams of this process only: the development server, a single worker."""

    def publish(self, flow_id: str) -> None:
        self.waiters.wake(flow_id)


@dataclass(eq=False)
class _Reader:
    """This process's subscriber task and what it has learnt: subscribed (``ready``), or ``failed``."""

    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: bool = False

    def alive_in(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Running in ``loop``, subscribing or subscribed: a connect may wait for it."""
        return self.task is not None and not self.task.done() and not self.failed and self.task.get_loop() is loop

    def holding_in(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Subscribed in ``loop``: a stream may count on it (before, a publish could pass unheard)."""
        return self.alive_in(loop) and self.ready.is_set()


class RedisBroker(Broker):
    """Redis pub/sub: one channel, one subscriber connection per process and event loop."""

    shared = True

    def __init__(self, url: str, channel: str) -> None:
        super().__init__()
        self.url = url
        self.channel = channel
        import redis

        # Connects on first use; a Redis that hangs holds a committing request 1 s at most.
        self._publisher = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._publish_failed_at: float | None = None
        self._reader = _Reader()

    def publish(self, flow_id: str) -> None:
        now = time.monotonic()
        if self._publish_failed_at is not None and now - self._publish_failed_at < BACK_OFF_SECONDS:
            return  # a Redis that hangs costs one timeout per few seconds, not one per transition
        try:
            self._publisher.publish(self.channel, flow_id)
            self._publish_failed_at = None
        except Exception as exc:
            # The flow is committed and the database says so: its streams read it at their
            # deadline, and "I have called" finishes the login as it does without push.
            self._publish_failed_at = now
            logger.warning("Flow %s: its change could not be published (%s)", flow_id, type(exc).__name__)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        reader = self._reader
        if not reader.alive_in(loop):
            reader = self._reader = _Reader()
            reader.task = loop.create_task(self._read(reader))
        try:
            await asyncio.wait_for(asyncio.shield(reader.ready.wait()), SUBSCRIBE_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:  # noqa: UP041  (not the builtin TimeoutError on Python 3.10)
            # A Redis that accepts but never answers: given up, so the next stream tries afresh.
            reader.failed = True
            cast("asyncio.Task[None]", reader.task).cancel()
            raise BrokerUnavailable("Redis did not confirm the subscription in time") from None
        if reader.failed:
            raise BrokerUnavailable("the Redis subscription failed")

    def subscribe(self, flow_id: str) -> Subscription:
        # No await between this check and the waiter's adding: a failure of the reader either
        # came before (refused here) or comes after, and wakes the subscription as broken.
        if not self._reader.holding_in(asyncio.get_running_loop()):
            raise BrokerUnavailable("the Redis subscription is not held")
        return super().subscribe(flow_id)

    async def _read(self, reader: _Reader) -> None:
        """Hold the subscription for this process; on any failure, every stream is woken as broken."""
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(
            self.url,
            socket_connect_timeout=SUBSCRIBE_TIMEOUT_SECONDS,
            socket_keepalive=True,
            # A PING when the connection was idle this long: a Redis that stopped answering is
            # noticed within two of these, and its streams end (their pages poll).
            health_check_interval=HEALTH_CHECK_SECONDS,
            # So an operator's CLIENT LIST tells which connections these are, and whose.
            client_name=f"callauth-push-{os.getpid()}",
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            reader.ready.set()
            while True:
                message = await pubsub.get_message(timeout=HEALTH_CHECK_SECONDS)
                if message is not None and message["type"] == "message":  # None: idle for a while
                    self.waiters.wake(message["data"].decode())
        except Exception as exc:
            logger.warning("Push: the Redis subscription failed (%s); the waiting pages poll", type(exc).__name__)
            reader.failed = True
            reader.ready.set()  # a subscriber waiting for it learns at once
            self.waiters.wake(None, broken=True)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
                await client.aclose()


_brokers: dict[tuple[Any, ...], Broker] = {}
_lock = threading.Lock()


def broker() -> Broker | None:
    """This process's broker for the current settings, or None when push is off."""
    choice = app_settings.PUSH
    if choice is None:
        return None
    cache = caches[app_settings.CACHE]
    if choice == "auto":
        if isinstance(cache, LocMemCache):
            choice = "process"
        else:
            choice = _redis_url_of(cache) or ""
            if not choice:
                return None
    key: tuple[Any, ...] = (choice, getattr(cache, "key_prefix", ""))
    with _lock:
        found = _brokers.get(key)
        if found is None:
            if choice == "process":
                found = ProcessBroker()
            else:
                found = RedisBroker(choice, _channel(choice, getattr(cache, "key_prefix", "")))
            _brokers[key] = found
    return found


def _redis_url_of(cache: Any) -> str | None:
    """The first server of Django's own Redis cache backend, or None for any other cache."""
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(cache, RedisCache):
        return None
    servers: list[str] = getattr(cache, "_servers", [])  # LOCATION, split as Django splits it
    return servers[0] if servers else None


def _channel(url: str, key_prefix: str) -> str:
    """The channel: pub/sub ignores Redis's database number, so the channel names it (and the
    cache's KEY_PREFIX), keeping the sites that share one Redis apart."""
    parts = urlsplit(url)
    database = parts.path.strip("/") or "0"
    server = urlunsplit((parts.scheme, parts.hostname or "", "", "", ""))
    return f"callauth:flows:{server}/{database}:{key_prefix}"


def pushable(flow: CallAuthFlow) -> bool:
    """Whether a stream can follow ``flow``: its provider tells of calls by itself.

    A flow whose provider must be asked (no webhook, no account callback) learns of the
    call only through the checks its polls make: its page polls.
    """
    provider = provider_named(flow.provider)
    if provider is None:
        return False
    return provider.simulated or flow.uses_webhook or provider.awaits_callback


def changed_receiver(sender: type[CallAuthFlow], flow: CallAuthFlow, **kwargs: Any) -> None:
    """``models.flow_changed``'s receiver (connected in ``apps.ready``): publish once committed."""
    chosen = broker()
    if chosen is not None:
        transaction.on_commit(partial(chosen.publish, str(flow.pk)), using=flow._state.db)
