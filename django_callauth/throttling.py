"""Cost limits on provider-billed starts, counted atomically on Django's shared cache.

Every start that reaches the provider is billed, so limits are taken *before* the
request (docs/security.rst, invariant 8): per client address, per phone and for the whole site,
as rates like ``"10/m,100/h"``. Counting is a sliding window of sub-window counters: a
``period`` is split into ``SUB_WINDOWS`` buckets, and a request counts every bucket that a
rolling period ending now can touch. That never admits more than the limit in *any*
rolling period (a plain fixed window lets twice the limit through around its edge), at
the price of refusing up to one bucket longer than strictly needed.

Each request first ``incr``\\ s its current buckets (atomic in every shared cache
backend), so concurrent requests see distinct counts and at most ``limit`` pass; a
refused request takes its increments back, so refusals count nothing. When the cache
cannot answer, nothing is allowed (fails closed).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.http import HttpRequest
from django.utils.functional import lazy
from django.utils.translation import ngettext

from . import errors, signals
from .clientip import client_ip, rate_limit_key
from .conf import app_settings
from .errors import ApiError
from .phones import mask_phone

logger = logging.getLogger("django_callauth")

SUB_WINDOWS = 6
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]*)\s*([smhd])\s*")
#: How long one browser's start may hold its lock if its process dies mid-request.
START_LOCK_SECONDS = 60
#: After a successful start, how long duplicates sent with the browser's old cookie are refused.
START_LOCK_HOLD_SECONDS = 10

# Module-level so tests can move time without patching the ``time`` module for everyone.
_clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds

    @property
    def bucket(self) -> int:
        """Seconds per sub-window counter."""
        return max(1, math.ceil(self.period / SUB_WINDOWS))

    @property
    def buckets(self) -> int:
        """How many sub-windows a rolling period can touch: all of them, plus the current one."""
        return math.ceil(self.period / self.bucket) + 1


def parse_rates(text: str) -> list[Rate]:
    """``"10/m,100/h"`` or ``"3/10m"`` → rates; raises ``ValueError`` for anything else."""
    rates = []
    for part in text.split(","):
        match = _RATE.fullmatch(part)
        if not match:
            raise ValueError(f"{part.strip()!r} is not a rate like '10/m' or '3/10m'")
        count, multiplier, unit = match.groups()
        period = int(multiplier or 1) * UNIT_SECONDS[unit]
        if int(count) <= 0 or period <= 0:
            raise ValueError(f"{part.strip()!r} must allow at least one request in a positive period")
        rates.append(Rate(int(count), period))
    return rates


class StartRefused(Exception):
    """A start that must not reach the provider; ``error`` is the answer, with its ``Retry-After``."""

    def __init__(self, error: ApiError, detail: str = "") -> None:
        super().__init__(detail or error.code.value)
        self.error = error


class RateLimited(StartRefused):
    def __init__(self, scope: str, retry_after: int) -> None:
        # The site-wide limit is not this person's doing: its message says so.
        answer = errors.RATE_LIMITED_SITE if scope == "global" else errors.RATE_LIMITED
        super().__init__(
            replace(answer.format(wait=_lazy_wait(retry_after)), retry_after=retry_after),
            f"rate limited by scope {scope!r} for {retry_after} s",
        )
        self.scope = scope
        self.retry_after = retry_after


class RateLimiterUnavailable(StartRefused):
    def __init__(self) -> None:
        super().__init__(errors.RATE_LIMITER_UNAVAILABLE)


class StartInProgress(StartRefused):
    def __init__(self) -> None:
        super().__init__(errors.START_IN_PROGRESS)


def format_wait(seconds: int) -> str:
    """``40`` → "40 seconds", ``300`` → "5 minutes", in the active language, rounded up."""
    if seconds <= 90:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    if seconds <= 90 * 60:
        minutes = math.ceil(seconds / 60)
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    hours = math.ceil(seconds / 3600)
    return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}


# In the language of the answer that shows it, not the one active when the start was refused.
_lazy_wait = lazy(format_wait, str)


def _cache() -> BaseCache:
    return caches[app_settings.CACHE]


def _digest(value: str) -> str:
    # Keys carry no phone or address in clear (cache dumps are read too), and stay short
    # and space-free for memcached.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _scopes(request: HttpRequest, phone: str) -> list[tuple[str, str, Rate]]:
    """(scope, identity, rate) for every limit that is on."""
    identities = {"ip": rate_limit_key(client_ip(request)), "phone": phone, "global": "site"}
    limits = []
    for scope, rates in app_settings.RATE_LIMITS.items():
        if rates is None or scope not in identities:
            continue
        for rate in parse_rates(rates):
            limits.append((scope, _digest(identities[scope]), rate))
    return limits


def _key(scope: str, identity: str, rate: Rate, index: int) -> str:
    return f"callauth:rl:{scope}:{identity}:{rate.period}:{index}"


def _incr(cache: BaseCache, key: str, timeout: int) -> int:
    cache.add(key, 0, timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: once more
        cache.add(key, 0, timeout)
        return cache.incr(key)


def _wait(rate: Rate, counts: list[int], now: float) -> int:
    """Seconds until one more request fits, given each bucket's count, oldest first."""
    current = int(now // rate.bucket)
    # Once every bucket has rolled out of the period, one request fits (limits are >= 1).
    dropped = next(n for n in range(len(counts)) if sum(counts[n + 1 :]) + 1 <= rate.limit)
    return max(1, math.ceil((current + 1 + dropped) * rate.bucket - now))


def consume_start(request: HttpRequest, phone: str) -> None:
    """Count one billed start, or raise ``RateLimited`` / ``RateLimiterUnavailable`` uncounted."""
    try:
        refusal = _count(request, phone, _clock())
    except Exception as exc:  # any backend's error, or a broken setting: a limiter that cannot count allows nothing
        logger.error("Rate limiter unavailable, start refused: %s: %s", type(exc).__name__, _first_line(exc))
        failure: RateLimiterUnavailable | None = RateLimiterUnavailable()
    else:
        failure = None
    if failure is not None:
        raise failure  # outside the except block: no chained backend error (it may name the cache's URL)
    if refusal is not None:
        logger.warning(
            "Start for %s refused by the %r limit for %s s", mask_phone(phone), refusal.scope, refusal.retry_after
        )
        signals.send_robust(signals.rate_limited, request=request, scope=refusal.scope)
        raise refusal


def _count(request: HttpRequest, phone: str, now: float) -> RateLimited | None:
    """Take this start's increments; on a refusal, give them back and say which scope refused."""
    limits = _scopes(request, phone)
    if not limits:
        return None
    cache = _cache()
    current_counts = []
    for scope, identity, rate in limits:
        key = _key(scope, identity, rate, int(now // rate.bucket))
        current_counts.append((key, _incr(cache, key, rate.bucket * (rate.buckets + 1))))
    older = cache.get_many([key for limit in limits for key in _older_keys(*limit, now)])
    refusal: RateLimited | None = None
    for (scope, identity, rate), (_key_now, count) in zip(limits, current_counts, strict=True):
        counts = [int(older.get(key) or 0) for key in _older_keys(scope, identity, rate, now)]
        if sum(counts) + count > rate.limit:
            # The wait is reckoned without this request: its increment is taken back below.
            wait = _wait(rate, [*counts, count - 1], now)
            if refusal is None or wait > refusal.retry_after:
                refusal = RateLimited(scope, wait)
    if refusal is not None:
        for key, _count_now in current_counts:
            cache.decr(key)
    return refusal


def _older_keys(scope: str, identity: str, rate: Rate, now: float) -> list[str]:
    """The keys of the buckets before the current one that a rolling period can touch, oldest first."""
    current = int(now // rate.bucket)
    return [_key(scope, identity, rate, index) for index in range(current - rate.buckets + 1, current)]


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""


@contextmanager
def one_start_at_a_time(request: HttpRequest) -> Iterator[None]:
    """Refuse a start while the same browser has one in flight (double submits, scripted bursts).

    The browser is known by the cookie it sent (its session, else its CSRF cookie), read
    raw: a successful start replaces the session key, so a duplicate that arrives later
    would find the old session gone and pass for a new browser. For the same reason the
    lock is held ``START_LOCK_HOLD_SECONDS`` after a success instead of being released; a
    failed start releases it, so the person can try again at once. A request without
    cookies cannot be told from another browser: the address and phone limits bound it.
    """
    browser = request.COOKIES.get(settings.SESSION_COOKIE_NAME) or request.COOKIES.get(settings.CSRF_COOKIE_NAME)
    if not browser:
        yield
        return
    key = "callauth:start-lock:" + _digest(browser)
    cache = _cache()
    try:
        acquired = cache.add(key, 1, START_LOCK_SECONDS)
    except Exception as exc:
        logger.error("Rate limiter unavailable, start refused: %s: %s", type(exc).__name__, _first_line(exc))
        acquired = None
    if acquired is None:
        raise RateLimiterUnavailable()
    if not acquired:
        logger.info("Start refused: another start of this browser is in flight")
        raise StartInProgress()
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        try:
            if succeeded:
                cache.set(key, 1, START_LOCK_HOLD_SECONDS)
            else:
                cache.delete(key)
        except Exception as exc:  # it expires by itself
            logger.warning("Could not release the start lock: %s", type(exc).__name__)
