"""The poll counter behind ``slow_down`` (guards/polls.py): what the status view's tests cannot reach.

What a page notices (never refused on time, a hammering client told to wait, fails open) is
in tests/test_views.py, "The polling contract".
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches

from django_callauth.guards import polls
from tests.helpers import Clock


def test_a_counter_another_poll_created_first_is_counted_on(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = caches["default"]
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


@pytest.mark.parametrize(("interval", "allowed"), [(1, 17), (0.5, 32), (2, 10), (30, 3)])
def test_a_window_admits_half_again_what_the_interval_allows_and_two(interval: float, allowed: int) -> None:
    assert polls.allowed_per_window(interval) == allowed
