"""What the providers' accounts last had left, and whether that is below its threshold.

Balances are learned only by ``manage.py callauth_providers``, which asks each provider and
stores the answer in the shared cache (``CALLAUTH_CACHE``) with the time it was seen: no
system check and no login ever waits on a provider's balance request. A start reads the
stored balances to pass by a provider known to be low (flows/start.py); a balance older than
``MAX_AGE_SECONDS`` is not known any more, so a stopped cron cannot keep a provider out.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import BaseCache, caches
from django.utils import timezone

from .. import signals
from ..conf import app_settings
from .base import ProviderBalance

logger = logging.getLogger("django_callauth")

#: Run the command more often than this (every 10 minutes is a good pace).
MAX_AGE_SECONDS = 3600


def _cache() -> BaseCache:
    return caches[app_settings.CACHE]


def cache_key(name: str) -> str:
    """Where ``name``'s last balance is kept (read by the admin's numbers page for the price too)."""
    return f"callauth:balance:{name}"


def threshold(name: str) -> Decimal | None:
    """The provider's ``CALLAUTH_LOW_BALANCE`` threshold, or None when it has none."""
    return app_settings.LOW_BALANCE.get(name)


def is_low(name: str, balance: ProviderBalance) -> bool:
    """Whether ``balance`` is below the provider's threshold (never, without one)."""
    limit = threshold(name)
    return limit is not None and balance.amount < limit


def record(name: str, balance: ProviderBalance) -> None:
    """Store what ``name``'s provider reported; below its threshold, an ERROR and ``provider_balance_low``.

    A cache that fails is logged: the command still reports and alerts, and starts simply
    do not know the balance.
    """
    price = None if balance.price is None else str(balance.price)
    state = {
        "amount": str(balance.amount),
        "currency": balance.currency,
        "price": price,
        "at": timezone.now().isoformat(),
    }
    try:
        _cache().set(cache_key(name), state, MAX_AGE_SECONDS)
    except Exception as exc:
        logger.warning("The balance of %s could not be cached (%s)", name, type(exc).__name__)
    limit = threshold(name)
    if limit is not None and balance.amount < limit:
        logger.error("Provider %s: balance %s %s, below threshold %s", name, balance.amount, balance.currency, limit)
        signals.send_robust(signals.provider_balance_low, provider=name, balance=balance, threshold=limit)


def known_low(names: list[str]) -> set[str]:
    """Which of ``names`` were last seen below their thresholds, within ``MAX_AGE_SECONDS``.

    One cache round trip; a cache that fails knows nothing (a start must not fail for it).
    """
    limits = {name: limit for name in names if (limit := threshold(name)) is not None}
    if not limits:
        return set()  # no threshold, no cache read: the common single-provider site pays nothing
    try:
        found: dict[str, Any] = _cache().get_many([cache_key(name) for name in limits])
    except Exception as exc:
        logger.warning("The providers' balances could not be read from the cache (%s)", type(exc).__name__)
        return set()
    return {
        name
        for name, limit in limits.items()
        if (amount := _fresh_amount(found.get(cache_key(name)))) is not None and amount < limit
    }


def _fresh_amount(state: Any) -> Decimal | None:
    """The stored amount when the entry is ours and young enough, else None."""
    try:
        seen_at = datetime.fromisoformat(state["at"])
        amount = Decimal(state["amount"])
    except (TypeError, KeyError, ValueError, InvalidOperation):
        return None
    if (timezone.now() - seen_at).total_seconds() > MAX_AGE_SECONDS:
        return None
    return amount
