"""The poll counter behind ``slow_down`` (guards/polls.py): what the status view's tests cannot reach.

What a page notices (never refused on time, a hammering client told to wait, fails open) is
in tests/test_views.py, "The polling contract".
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache.backends.locmem import LocMemCache

from django_callauth.guards import polls
from tests.helpers import Clock


def test_a_counter_another_poll_created_first_is_counted_on(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = LocMemCache("polls-race", {})  # the counter of any cache but Redis (which takes one round trip)
    real_incr = cache.incr
    raced: list[int] = []

    def incr_after_a_racing_poll(key: str, *args: Any) -> int:
        if not raced:  # this poll finds no counter; another poll then adds it first
            raced.append(1)
            cache.add(key, 1, 60)
            raise ValueError(key)
        return real_incr(key, *args)

    monkeypatch.setattr(cache, "incr", incr_after_a_racing_poll)
    monkeypatch.setattr(polls, "_cache", lambda: cache)
    assert polls.slow_down("flow-1") is None
    window = int(clock.now.timestamp() // polls.WINDOW_SECONDS)
    assert cache.get(polls._key("flow-1", window)) == 2  # both polls counted


@pytest.mark.parametrize(("interval", "allowed"), [(1, 32), (0.5, 62), (2, 17), (30, 3)])
def test_a_window_admits_two_tabs_on_time_half_again_and_two(interval: float, allowed: int) -> None:
    assert polls.allowed_per_window(interval) == allowed


def test_on_redis_the_counter_reads_back_through_the_cache(clock: Clock) -> None:
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        pytest.skip("needs Redis: set CALLAUTH_TEST_CACHE_URL=redis://127.0.0.1:6379/<n>")
    window = int(clock.now.timestamp() // polls.WINDOW_SECONDS)
    cache.delete(polls._key("flow-2", window))
    assert [polls.slow_down("flow-2") for _ in range(3)] == [None] * 3
    assert cache.get(polls._key("flow-2", window)) == 3
    assert 0 < cache._cache.get_client().ttl(cache.make_key(polls._key("flow-2", window))) <= 11
