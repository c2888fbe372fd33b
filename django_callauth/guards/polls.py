"""``slow_down``: a courtesy refusal of status polls clearly faster than ``CALLAUTH_POLL_INTERVAL``.

Counted per flow (the session's), in the shared cache ``CALLAUTH_CACHE``: one counter per
flow and ``WINDOW_SECONDS`` window, one cache operation per poll (on Redis one round trip;
elsewhere an ``incr``, and an ``add`` for the window's first). A window admits the polls
of ``TABS`` pages on time, half again, plus two: the flow is the session's, so every tab
of its page polls it, and a page polling on time is never refused, whatever its jitter;
only a client clearly faster is told to wait until the window ends.

It fails open: a cache that cannot count refuses no poll, and one that failed a poll
lately is not asked for ``cachehealth.BACK_OFF_SECONDS`` (a hanging cache costs no timeout
per poll). Nothing billed depends on it (the provider's checks are bounded on the flow's
row, flows/refresh.py), so a poll it lets through costs a cache read and the session,
never a provider request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache

from ..conf import app_settings
from . import cachehealth
from .limits import _site

#: The counting window: long enough to smooth a page's jitter, short enough that a refusal
#: ends soon.
WINDOW_SECONDS = 10
#: The pages of one flow (tabs of the same session) a window admits polling on time.
TABS = 2
#: How many more polls than that a window admits: a share, and a few over.
SLACK_SHARE = 0.5
SLACK_POLLS = 2

# Module-level so tests can move time without patching the ``time`` module for everyone.
_clock: Callable[[], float] = time.time


def _cache() -> BaseCache:
    return caches[app_settings.CACHE]


def _key(flow_id: str, window: int) -> str:
    return f"callauth:polls:{_site()}:{flow_id}:{window}"


def _count(cache: BaseCache, key: str, timeout: int, reads: tuple[str, ...]) -> tuple[int, list[Any]]:
    """Add one to the counter ``key`` (created with ``timeout``) and get ``reads``: its new count, their values."""
    if isinstance(cache, RedisCache):
        # Django's get and incr are a round trip each, and its incr asks EXISTS first and
        # needs an add before the first. This is one round trip: the GETs, SET NX creating
        # the counter with its lifetime, INCR. Django stores an int as it is, so the counter
        # reads back through the cache too; other values are read as Django's get reads them.
        stored = cache.make_key(key)  # our own keys: nothing to validate
        client = cache._cache
        pipe = client.get_client(stored, write=True).pipeline(transaction=False)
        for read in reads:
            pipe.get(cache.make_key(read))
        pipe.set(stored, 0, ex=timeout, nx=True)
        pipe.incr(stored)
        *values, _created, count = pipe.execute()
        loads = client._serializer.loads  # type: ignore[attr-defined]  # what RedisCache.get reads with
        return int(count), [None if value is None else loads(value) for value in values]
    values = [cache.get(read) for read in reads]
    try:
        return cache.incr(key), values
    except ValueError:  # the window's first poll (or its counter was evicted)
        return (1 if cache.add(key, 1, timeout) else cache.incr(key)), values


def allowed_per_window(interval: float) -> int:
    """The most polls a window admits at ``interval`` seconds between a page's polls, with the slack."""
    return math.ceil(WINDOW_SECONDS / interval * TABS * (1 + SLACK_SHARE)) + SLACK_POLLS


def slow_down(flow_id: str) -> int | None:
    """Count one poll of ``flow_id``; seconds to wait when its polls are clearly too fast, else None."""
    if cachehealth.backing_off():  # it failed a poll lately: wait no timeout for it (fails open)
        return None
    try:
        wait, _values = counted(flow_id)
    except Exception:  # fails open: not a poll is refused for a cache that cannot count
        cachehealth.failed()
        return None
    return wait


def counted(flow_id: str, *reads: str) -> tuple[int | None, list[Any]]:
    """Count one poll of ``flow_id`` and read the cache keys ``reads`` in the same round trip.

    Returns the wait ``slow_down`` answers (None: the poll is on time) and the values read
    (None for a key the cache does not hold). Raises whatever the cache raises: the caller
    fails open (``slow_down``; the flow cache's poll, flows/cache.py).
    """
    now = _clock()
    window = int(now // WINDOW_SECONDS)
    count, values = _count(_cache(), _key(flow_id, window), WINDOW_SECONDS + 1, reads)
    if count <= allowed_per_window(app_settings.POLL_INTERVAL):
        return None, values
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now)), values
