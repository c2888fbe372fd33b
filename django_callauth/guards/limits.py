"""Cost limits on provider-billed starts, counted atomically on Django's shared cache.

Every start that reaches the provider is billed, so limits are taken *before* the
request (docs/security.rst, invariant 8): per client address (IPv6 also per /56 and /48),
per phone and for the whole site, as rates like ``"10/m,100/h"``. A browser whose device
cookie proves the phone (guards/devices.py) is counted per device and phone instead of per phone
and site: strangers cannot spend what its owner needs to log in (invariant 17). The
address limits hold for it too, since anyone who owns one phone can mint such cookies.

Counting is a sliding window of counters at two resolutions: each start increments a
coarse counter (``COARSE_WINDOWS`` to a period) and a fine one (``FINE_WINDOWS`` to a coarse
one). A request counts every coarse counter a rolling period ending now covers whole, and
the fine counters of the coarse one it starts in. That never admits more than the limit in
*any* rolling period (a plain fixed window lets twice the limit through around its edge),
and refuses at most one fine counter (1/900 of the period, at least a second) longer than
strictly needed: a refusal's ``Retry-After`` is true to its rule, reading at most 60 keys.

Each request first ``incr``\\ s its current buckets (atomic in every shared cache
backend), so concurrent requests see distinct counts and at most ``limit`` pass; a
refused request takes its increments back, so refusals count nothing. When the cache
cannot answer, nothing is allowed (fails closed).
"""

from __future__ import annotations

import functools
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
from django.utils.crypto import salted_hmac
from django.utils.functional import lazy
from django.utils.translation import ngettext

from .. import errors, signals
from ..conf import app_settings
from ..errors import ApiError, CallAuthRefusal
from ..phones import mask_phone
from . import devices
from .clientip import address_keys, client_ip

logger = logging.getLogger("django_callauth")

#: Coarse counters per period, and fine counters per coarse one: a refusal's wait overshoots
#: the true one by at most a fine counter (1 s for "3/10m", 4 s for an hour, 96 s for a day).
COARSE_WINDOWS = 30
FINE_WINDOWS = 30
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
    def fine(self) -> int:
        """Seconds per fine counter: the most a refusal's wait exceeds the true one."""
        return max(1, math.ceil(self.period / (COARSE_WINDOWS * FINE_WINDOWS)))

    @property
    def coarse(self) -> int:
        """Seconds per coarse counter, a whole number of fine ones."""
        return self.fine * FINE_WINDOWS

    @property
    def timeout(self) -> int:
        """How long a counter is kept: as long as a rolling period that ends later can touch it."""
        return self.period + 2 * self.coarse


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


class StartRefused(CallAuthRefusal):
    """A start that must not reach the provider; ``error`` is the answer, with its ``Retry-After``."""

    def __init__(self, error: ApiError, detail: str = "") -> None:
        super().__init__(detail or error.code.value, error=error)


class RateLimited(StartRefused):
    """A cost limit (``CALLAUTH_RATE_LIMITS``) is spent: ``scope`` names it, ``retry_after`` says when one fits."""

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
    """The cache that counts the limits cannot answer: no start is allowed (fails closed)."""

    def __init__(self) -> None:
        super().__init__(errors.RATE_LIMITER_UNAVAILABLE)


class StartInProgress(StartRefused):
    """The same browser is already starting a flow (a double submit)."""

    def __init__(self) -> None:
        super().__init__(errors.START_IN_PROGRESS)


def format_wait(seconds: int) -> str:
    """``40`` → "40 seconds", ``300`` → "5 minutes", in the active language, rounded up.

    Minutes and hours leave out the counters' own step (1/900 of the wait, at least a
    second), by which a wait is already rounded up: a 10-minute rule waits "10 minutes",
    not 11 for the second the counters are coarse by.
    """
    if seconds <= 90:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    step = seconds / (COARSE_WINDOWS * FINE_WINDOWS) + 1
    if seconds <= 90 * 60:
        minutes = math.ceil((seconds - step) / 60)
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    hours = math.ceil((seconds - step) / 3600)
    return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}


# In the language of the answer that shows it, not the one active when the start was refused.
_lazy_wait = lazy(format_wait, str)


def _cache() -> BaseCache:
    return caches[app_settings.CACHE]


def _site() -> str:
    """This site's mark in every key: two sites sharing one cache database never share a count.

    Derived from ``SECRET_KEY`` (never the key itself): the one setting that tells sites apart.
    Computed once per key: every status poll's count names it too (guards/polls.py).
    """
    return _site_of(settings.SECRET_KEY)


@functools.lru_cache(maxsize=4)
def _site_of(secret_key: str) -> str:
    mark = salted_hmac("django_callauth.guards.limits.site", "site", secret=secret_key, algorithm="sha256")
    return mark.hexdigest()[:12]


def _digest(value: str) -> str:
    # Keys carry no phone or address in clear (cache dumps are read too), and stay short
    # and space-free for memcached.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


#: A counter: its resolution ("f" fine, "c" coarse) and its index since the epoch.
Unit = tuple[str, int]
#: (scope, identity digest, rate): one limit a start is counted in.
Limit = tuple[str, str, Rate]


def _scopes(request: HttpRequest, phone: str) -> list[Limit]:
    """(scope, identity, rate) for every limit that is on; a returning browser's own in place of the anonymous."""
    identities = address_keys(client_ip(request))
    device = devices.proven_device(request, phone)
    if device is None:
        identities.update(phone=phone, **{"global": "site"})
    else:
        identities.update(device=f"{device}:{phone}", device_phone=phone)
    limits = []
    for scope, rates in app_settings.RATE_LIMITS.items():
        if rates is None or scope not in identities:
            continue
        for rate in parse_rates(rates):
            limits.append((scope, _digest(identities[scope]), rate))
    return limits


def _key(scope: str, identity: str, rate: Rate, unit: Unit) -> str:
    level, index = unit
    return f"callauth:rl:{_site()}:{scope}:{identity}:{rate.period}:{level}{index}"


def _units(rate: Rate, now: float) -> list[Unit]:
    """The counters a rolling period ending at ``now`` touches, oldest first, the current one last.

    The coarse counter the period starts in is read by its fine counters, so that the part
    of it that has already left the period is not counted.
    """
    start = now - rate.period
    boundary, current = int(start // rate.coarse), int(now // rate.coarse)
    last_fine = int(now // rate.fine) if boundary == current else (boundary + 1) * FINE_WINDOWS - 1
    fine = [("f", index) for index in range(int(start // rate.fine), last_fine + 1)]
    return fine + [("c", index) for index in range(boundary + 1, current + 1)]


def _incr(cache: BaseCache, key: str, timeout: int) -> int:
    cache.add(key, 0, timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: once more
        cache.add(key, 0, timeout)
        return cache.incr(key)


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
        if refusal.scope == "global":
            # Not one person's doing: every new browser is refused until the budget refills.
            logger.error("Global start budget spent: new browsers' starts refused for %s s", refusal.retry_after)
        else:
            logger.warning(
                "Start for %s refused by the %r limit for %s s", mask_phone(phone), refusal.scope, refusal.retry_after
            )
        signals.send_robust(signals.rate_limited, request=request, scope=refusal.scope)
        raise refusal


def _count(request: HttpRequest, phone: str, now: float) -> RateLimited | None:
    """Refuse on what the counters hold; else take this start's increments, and give them
    back if racing starts filled a limit first."""
    limits = _scopes(request, phone)
    if not limits:
        return None
    cache = _cache()
    windows = [_units(rate, now) for _scope, _identity, rate in limits]
    # Already full: refused on one read, without a write (what each refusal of an attack costs).
    refusal = _refusal(cache, limits, windows, _read(cache, limits, windows, []), now, taken=False)
    if refusal is not None:
        return refusal
    taken: list[str] = []
    current: list[int] = []
    for (scope, identity, rate), units in zip(limits, windows, strict=True):
        for unit in (("f", int(now // rate.fine)), ("c", int(now // rate.coarse))):
            key = _key(scope, identity, rate, unit)
            value = _incr(cache, key, rate.timeout)
            taken.append(key)
            if unit == units[-1]:
                current.append(value - 1)  # the others' count: concurrent starts each see their own
    refusal = _refusal(cache, limits, windows, _read(cache, limits, windows, current), now, taken=True)
    if refusal is not None:
        for key in taken:
            cache.decr(key)
    return refusal


def _read(cache: BaseCache, limits: list[Limit], windows: list[list[Unit]], current: list[int]) -> list[list[int]]:
    """Each limit's counts, oldest first; the current counters' from ``current`` when given."""
    skip = 1 if current else 0
    keys = [
        _key(*limit, unit) for limit, units in zip(limits, windows, strict=True) for unit in units[: len(units) - skip]
    ]
    values = cache.get_many(keys)
    counts = []
    for index, (limit, units) in enumerate(zip(limits, windows, strict=True)):
        read = [int(values.get(_key(*limit, unit)) or 0) for unit in units[: len(units) - skip]]
        counts.append([*read, current[index]] if current else read)
    return counts


def _refusal(
    cache: BaseCache, limits: list[Limit], windows: list[list[Unit]], counts: list[list[int]], now: float, taken: bool
) -> RateLimited | None:
    """The refusal of a start that one more request would put over a limit, or None."""
    waits: dict[str, int] = {}
    for limit, units, counted in zip(limits, windows, counts, strict=True):
        if sum(counted) + 1 > limit[2].limit:
            wait = _wait(cache, limit, list(zip(units, counted, strict=True)), now, taken)
            waits[limit[0]] = max(waits.get(limit[0], 0), wait)
    if not waits:
        return None
    # The longest wait is the true one; a spent site budget is named as such whatever else refused.
    scope = "global" if "global" in waits else max(waits, key=waits.__getitem__)
    return RateLimited(scope, max(waits.values()))


def _wait(cache: BaseCache, limit: Limit, counted: list[tuple[Unit, int]], now: float, taken: bool) -> int:
    """Seconds until one more request fits, given each counter's count without this request, oldest first.

    A coarse counter holding the last request that must leave is read by its fine counters,
    so the wait is as exact as the boundary's: at most one fine counter too long.
    """
    rate = limit[2]
    counts = [count for _unit, count in counted]
    # The counter whose leaving, after every older one, makes room (limits are >= 1).
    n = next(n for n in range(len(counts)) if sum(counts[n + 1 :]) + 1 <= rate.limit)
    level, index = counted[n][0]
    if level == "f":
        return _wait_until(rate, (index + 1) * rate.fine, now)
    must_leave = sum(counts[n:]) + 1 - rate.limit
    fine = _fine_counts(cache, limit, index, int(now // rate.fine) if taken else None)
    return _wait_until(rate, _leaving(fine, must_leave, rate.fine, (index + 1) * rate.coarse), now)


def _fine_counts(cache: BaseCache, limit: Limit, coarse: int, mine: int | None) -> list[tuple[int, int]]:
    """(fine index, count) of one coarse counter; this request's own increment (at ``mine``) left out."""
    scope, identity, rate = limit
    indices = range(coarse * FINE_WINDOWS, (coarse + 1) * FINE_WINDOWS)
    values = cache.get_many([_key(scope, identity, rate, ("f", index)) for index in indices])
    return [
        (index, int(values.get(_key(scope, identity, rate, ("f", index))) or 0) - (index == mine)) for index in indices
    ]


def _leaving(counted: list[tuple[int, int]], excess: int, seconds: int, fallback: int) -> int:
    """When the first ``excess`` requests counted have all left their counters.

    Racing starts may have incremented a coarse counter and not yet its fine one: then
    the fine ones hold too few, and the coarse counter's end (``fallback``) is the bound.
    """
    for index, count in counted:
        excess -= count
        if excess <= 0:
            return (index + 1) * seconds
    return fallback


def _wait_until(rate: Rate, leaves: float, now: float) -> int:
    """Seconds from ``now`` until a request counted until ``leaves`` has left every rolling period."""
    return max(1, math.ceil(leaves + rate.period - now))


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
    key = f"callauth:start-lock:{_site()}:{_digest(browser)}"
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
