"""Whether the shared cache ``CALLAUTH_CACHE`` failed a poll lately: then polls leave it alone a while.

A cache that hangs would otherwise cost every poll a timeout, once for the flow's copy
(flows/cache.py) and once more for its count (guards/polls.py). Both mark a failure here and
skip the cache for ``BACK_OFF_SECONDS`` after one; what they then do without it is theirs to
say (read the database; count nothing).
"""

from __future__ import annotations

import time

from ..conf import app_settings

#: How long polls go without asking the cache, after it failed to answer.
BACK_OFF_SECONDS = 5

# When the cache of each alias last failed (time.monotonic()), in this process.
failed_at: dict[str, float] = {}


def backing_off() -> bool:
    """Whether ``CALLAUTH_CACHE`` failed less than ``BACK_OFF_SECONDS`` ago."""
    at = failed_at.get(app_settings.CACHE)
    return at is not None and time.monotonic() - at < BACK_OFF_SECONDS


def failed() -> None:
    """``CALLAUTH_CACHE`` just failed to answer."""
    failed_at[app_settings.CACHE] = time.monotonic()
