"""Caches for the tests that need a real one: Redis, shared by parallel test runs."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

#: A Redis database the in-process tests may use; each test keeps to its own key prefix.
REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_reachable() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


def use_redis_cache(settings: Any) -> None:
    """Make the default cache Redis, under a key prefix of this test's own; skip without Redis.

    Never flushed: test runs in parallel (tox -p) share this Redis. Where CI requires
    Redis (CALLAUTH_REQUIRE_REDIS), its absence fails instead.
    """
    if not _redis_reachable():
        if os.environ.get("CALLAUTH_REQUIRE_REDIS"):
            pytest.fail("CALLAUTH_REQUIRE_REDIS is set but Redis is not reachable at " + REDIS_URL)
        pytest.skip("needs Redis at " + REDIS_URL + " and the redis package")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": uuid.uuid4().hex,
        }
    }
