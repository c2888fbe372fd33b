"""A flow's state in the shared cache, so the status poll needs no database query.

Every open challenge page polls the status every second; 10,000 people waiting
would be 10,000 queries a second for nothing. So each flow's row is copied into the
cache when a transition commits (``CallAuthFlow._update`` calls ``changed``) and on a
miss (``fill``), and the status poll reads it from there (``load_polled``). Deciding stays on
the database: ``complete``, checks and webhooks load the row, and every transition is
still a conditional UPDATE.

What a poll sees is what the database says (docs/security.rst, invariant 20):

* A transition deletes the old copy at once and stores the new one only when its
  transaction commits: a transition that is rolled back (project code failing inside the
  login's transaction) is never seen, and until the commit a miss reads the database,
  which still says the old state.
* A poll's miss only *adds* the row it read: a transition that committed after that read
  has stored a newer copy, which the older one never overwrites.
* A per-process cache (``LocMemCache``) is not used at all: a webhook or a command in
  another process could not update this process's copy, so the poll reads the row (one
  query by primary key) and sees a change made anywhere at its next poll.

A transition must not stay hidden from a polling page: when the cache refuses to store
one, the stale copy is deleted instead (Redis under ``maxmemory`` refuses writes but
accepts deletes); when it refuses both yet still answers reads, the copy expires after
``MAX_AGE_SECONDS`` anyway. A cache that fails to answer is a miss, and polls leave it
alone for ``BACK_OFF_SECONDS``: a cache that hangs costs one timeout per few seconds, not
one per poll (transitions still try it: their copies are replaced whenever it answers).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction

from ..conf import app_settings
from ..guards import cachehealth, polls
from ..models import CACHED_SECRET_MARK, CallAuthFlow

logger = logging.getLogger("django_callauth")

#: How long a copy lives: a pending flow's row is read from the database once in this
#: long, and a transition the cache could neither store nor delete is hidden at most this long.
MAX_AGE_SECONDS = 10
# How long polls read the database without asking the cache after it failed to answer, and
# when it last did: shared with the poll counter (guards/polls.py), which skips it as long.
_failed_at = cachehealth.failed_at
BACK_OFF_SECONDS = cachehealth.BACK_OFF_SECONDS


def _cache() -> BaseCache:
    return caches[app_settings.CACHE]


def _key(flow_id: object) -> str:
    return f"callauth:flow:{flow_id}"


def shared() -> bool:
    """Whether every process reads and writes the same cache, so a copy can be trusted."""
    return not isinstance(_cache(), LocMemCache)


def _usable_for_polls() -> bool:
    return shared() and not cachehealth.backing_off()


def _failed() -> None:
    cachehealth.failed()


def _state(flow: CallAuthFlow) -> dict[str, Any]:
    state: dict[str, Any] = {field.attname: getattr(flow, field.attname) for field in flow._meta.concrete_fields}
    # Only whether there is one: the hash stays in the database (the webhook reads it there).
    state["webhook_secret_hash"] = CACHED_SECRET_MARK if flow.webhook_secret_hash else ""
    return state


def changed(flow: CallAuthFlow) -> None:
    """``flow``'s row was just written: its copy is replaced once the transaction commits.

    Deleted now, so that until then (and for good, if the transaction is rolled back) a
    poll reads the database; stored on commit, as the row was written, with ``set``: it
    replaces whatever a poll added meanwhile, which is never newer.
    """
    if not shared():
        return
    failure = _delete(_key(flow.pk))
    if failure:
        logger.warning("Flow %s: its old state could not be deleted from the cache (%s)", flow.pk, failure)
    transaction.on_commit(partial(_store, flow.pk, _state(flow)), using=flow._state.db)


def changed_receiver(sender: type[CallAuthFlow], flow: CallAuthFlow, **kwargs: Any) -> None:
    """``models.flow_changed``'s receiver (connected in ``apps.ready``)."""
    changed(flow)


def _store(flow_id: object, state: dict[str, Any]) -> None:
    """Copy a committed row into the cache, or make sure no stale copy is left there."""
    key = _key(flow_id)
    try:
        _cache().set(key, state, MAX_AGE_SECONDS)
        return
    except Exception as exc:
        _failed()
        failure = type(exc).__name__
    failure_to_delete = _delete(key)
    if failure_to_delete:
        logger.error(
            "Flow %s: its state could neither be cached nor deleted (%s, %s); polls may see it late",
            flow_id,
            failure,
            failure_to_delete,
        )
    else:
        logger.warning("Flow %s: its state could not be cached (%s); the copy was deleted", flow_id, failure)


def _delete(key: str) -> str:
    """Delete a copy; the name of the exception if the cache failed, else ''."""
    try:
        _cache().delete(key)
    except Exception as exc:
        _failed()
        return type(exc).__name__
    return ""


def fill(flow: CallAuthFlow) -> None:
    """Copy the row a poll read, unless a copy is there: one stored since is newer."""
    if not _usable_for_polls():
        return
    try:
        _cache().add(_key(flow.pk), _state(flow), MAX_AGE_SECONDS)
    except Exception as exc:
        _failed()
        logger.warning("Flow %s: its state could not be cached (%s)", flow.pk, type(exc).__name__)


def load_polled(flow_id: str) -> tuple[CallAuthFlow | None, int | None]:
    """The flow as last stored, and the status poll counted for ``slow_down`` (guards/polls.py), in one round trip.

    Returns the flow, or None on a miss (absent, too old, untrusted, or the cache failing),
    and the wait ``slow_down`` answers or None. A cache that fails is a miss and refuses
    nothing (both fail open).
    """
    if not _usable_for_polls():
        return None, polls.slow_down(flow_id)
    key = _key(flow_id)
    try:
        wait, (state,) = polls.counted(flow_id, key)
    except Exception as exc:
        _unanswered(flow_id, exc)
        return None, None
    return _from_state(key, state), wait


def load(flow_id: str) -> CallAuthFlow | None:
    """The flow as last stored, or None on a miss; for a reader that is no poll (an events stream)."""
    if not _usable_for_polls():
        return None
    key = _key(flow_id)
    try:
        state = _cache().get(key)
    except Exception as exc:
        _unanswered(flow_id, exc)
        return None
    return _from_state(key, state)


def _unanswered(flow_id: str, exc: Exception) -> None:
    _failed()
    logger.warning("Flow %s: the cache failed to answer (%s); reading the database", flow_id, type(exc).__name__)


def _from_state(key: str, state: object) -> CallAuthFlow | None:
    """The flow a copy holds, or None for none (or an unusable one, which is deleted)."""
    if not isinstance(state, dict):
        return None
    try:
        return CallAuthFlow(**state)
    except TypeError:  # a copy stored by another version of the model: a miss, and the row replaces it
        _delete(key)
        return None
