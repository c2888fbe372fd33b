"""``slow_down``: a courtesy refusal of status polls clearly faster than ``CALLAUTH_POLL_INTERVAL``.

Counted per flow (the session's), in the shared cache ``CALLAUTH_CACHE``: one counter per
flow and ``WINDOW_SECONDS`` window, one cache operation per poll (on Redis one round trip;
elsewhere an ``incr``, and an ``add`` for the window's first). A window admits half again
as many polls as the interval allows, plus two, so a page polling on time is never
refused, whatever its jitter; only a client clearly faster is told to wait until the
window ends.

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

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache

from ..conf import app_settings
from . import cachehealth
from .limits import _site

#: The counting window: long enough to smooth a page's jitter, short enough that a refusal
#: ends soon.
WINDOW_SECONDS = 10
#: How many more polls than the interval allows a window admits: a share, and a few over.
SLACK_SHARE = 0.5
SLACK_POLLS = 2

# Module-level so tests can move time without patching the ``time`` module for everyone.
_clock: Callable[[], float] = time.time


def _cache() -> BaseCache:
    return caches[app_settings.CACHE]


def _key(flow_id: str, window: int) -> str:
    return f"callauth:polls:{_site()}:{flow_id}:{window}"


def _count(cache: BaseCache, key: str, timeout: int) -> int:
    """Add one to the counter ``key`` (created with ``timeout``); its new count."""
    if isinstance(cache, RedisCache):
        # Django's incr asks EXISTS first and needs an add before the first: three round
        # trips. This is one: SET NX creates the counter with its lifetime, INCR counts.
        # Django stores an int as it is, so the counter reads back through the cache too.
        stored = cache.make_and_validate_key(key)
        pipe = cache._cache.get_client(stored, write=True).pipeline(transaction=False)
        pipe.set(stored, 0, ex=timeout, nx=True)
        pipe.incr(stored)
        return int(pipe.execute()[1])
    try:
        return cache.incr(key)
    except ValueError:  # the window's first poll (or its counter was evicted)
        return 1 if cache.add(key, 1, timeout) else cache.incr(key)


def allowed_per_window(interval: float) -> int:
    """The most polls a window admits at ``interval`` seconds between polls, with the slack."""
    return math.ceil(WINDOW_SECONDS / interval * (1 + SLACK_SHARE)) + SLACK_POLLS


def slow_down(flow_id: str) -> int | None:
    """Count one poll of ``flow_id``; seconds to wait when its polls are clearly too fast, else None."""
    now = _clock()
    window = int(now // WINDOW_SECONDS)
    key = _key(flow_id, window)
    if cachehealth.backing_off():  # it failed a poll lately: wait no timeout for it (fails open)
        return None
    try:
        count = _count(_cache(), key, WINDOW_SECONDS + 1)
    except Exception:  # fails open: not a poll is refused for a cache that cannot count
        cachehealth.failed()
        return None
    if count <= allowed_per_window(app_settings.POLL_INTERVAL):
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
