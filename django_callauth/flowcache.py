"""A flow's state in the shared cache, so the status poll needs no database query.

Every open challenge page polls the status every second; 10,000 people waiting
would be 10,000 queries a second for nothing. So each flow's row is copied into the
cache on every transition (``CallAuthFlow._transition`` calls ``store``) and on a
miss, and the status poll reads it from there. Deciding stays on
the database: ``complete``, checks and webhooks load the row, and every transition is
still a conditional UPDATE.

A transition must not stay hidden from a polling page: when the cache refuses to store
one, the stale copy is deleted instead (Redis under ``maxmemory`` refuses writes but
accepts deletes); when it refuses both yet still answers reads, the copy expires after
``MAX_AGE_SECONDS`` anyway. A cache that fails to answer is a miss.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache

from .conf import app_settings

if TYPE_CHECKING:
    from .models import CallAuthFlow

logger = logging.getLogger("django_callauth")

#: How long a copy lives: a pending flow's row is read from the database once in this
#: long, and a transition the cache could neither store nor delete is hidden at most this long.
MAX_AGE_SECONDS = 10


def _cache() -> BaseCache:
    return caches[app_settings.CACHE]


def _key(flow_id: object) -> str:
    return f"callauth:flow:{flow_id}"


def store(flow: CallAuthFlow) -> None:
    """Copy ``flow``'s row into the cache, or make sure no stale copy is left there."""
    state: dict[str, Any] = {field.attname: getattr(flow, field.attname) for field in flow._meta.concrete_fields}
    # Only whether there is one: the hash stays in the database (the webhook reads it there).
    state["webhook_secret_hash"] = "*" if flow.webhook_secret_hash else ""
    key = _key(flow.pk)
    try:
        _cache().set(key, state, MAX_AGE_SECONDS)
        return
    except Exception as exc:
        failure = type(exc).__name__
    try:
        _cache().delete(key)
        logger.warning("Flow %s: its state could not be cached (%s); the copy was deleted", flow.pk, failure)
    except Exception as exc:
        logger.error(
            "Flow %s: its state could neither be cached nor deleted (%s, %s); polls may see it late",
            flow.pk,
            failure,
            type(exc).__name__,
        )


def load(flow_id: str) -> CallAuthFlow | None:
    """The flow as last stored, or None on a miss (absent, too old, or the cache failing)."""
    from .models import CallAuthFlow

    try:
        state = _cache().get(_key(flow_id))
    except Exception as exc:
        logger.warning("Flow %s: the cache failed to answer (%s); reading the database", flow_id, type(exc).__name__)
        return None
    if not isinstance(state, dict):
        return None
    try:
        return CallAuthFlow(**state)
    except TypeError:  # a copy stored by another version of the model: a miss
        return None
