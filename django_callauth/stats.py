"""Numbers an operator reads: per provider and per day, what became of the flows started.

Everything is counted by the database in a few aggregate queries over the window of days
(``GROUP BY`` provider, day, status, failure reason), on the ``created_at`` index: the
flows never come back to Python. Only the times from start to call do,
on databases without ``percentile_cont`` (SQLite): there the confirmed flows of the window
are fetched as two timestamps each and the percentiles computed here, the same way.

A day is a day of the current time zone (``TruncDate``), as the admin shows dates.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import caches
from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from .conf import app_settings
from .models import CallAuthFlow, FlowStatus
from .providers import balances

#: The window the dashboard shows unless asked, and the longest it shows.
DEFAULT_DAYS = 14
MAX_DAYS = 90


@dataclass
class Counts:
    """What became of the flows of one provider (on one day, or over the window)."""

    starts: int = 0
    #: Started by the provider, which may bill them: a number to call was handed out.
    billed: int = 0
    #: A call from the right phone was reported in time (whatever happened next).
    confirmed: int = 0
    #: The confirmed call was used: a login, or a phone added to an account.
    used: int = 0
    #: The time was up with no call confirmed (stored so, or pending past the deadline).
    expired: int = 0
    #: Failed flows by ``FailureReason`` value.
    failed: dict[str, int] = field(default_factory=dict)
    #: Flows another provider started after the first one asked set up no call.
    failovers: int = 0
    #: Seconds from start to confirmed call; None without a confirmed call.
    median_seconds: float | None = None
    p95_seconds: float | None = None

    def add(self, other: Counts) -> None:
        """Add ``other``'s counts (not its percentiles, which do not add up)."""
        self.starts += other.starts
        self.billed += other.billed
        self.confirmed += other.confirmed
        self.used += other.used
        self.expired += other.expired
        self.failovers += other.failovers
        for reason, count in other.failed.items():
            self.failed[reason] = self.failed.get(reason, 0) + count

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())


@dataclass(frozen=True)
class Price:
    """What a provider charges for one started flow, as its balance command last saw it."""

    amount: Decimal
    currency: str


@dataclass
class ProviderStats:
    provider: str
    #: One entry per day of the window, oldest first, days without flows included.
    days: list[tuple[date, Counts]]
    total: Counts
    price: Price | None

    @property
    def cost(self) -> Decimal | None:
        """Billed starts × the known price; None when the provider reports no price."""
        return None if self.price is None else self.price.amount * self.total.billed


@dataclass(frozen=True)
class Dashboard:
    since: date
    until: date
    providers: list[ProviderStats]

    @property
    def days(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``.

    django.contrib.postgres has no percentile aggregate. Linear interpolation between the
    two nearest values, as ``percentile_cont`` below does in Python.
    """

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("a percentile's fraction is between 0 and 1")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


class EpochSeconds(Func):
    """Seconds between two timestamps, on PostgreSQL: ``EXTRACT(EPOCH FROM (later - earlier))``."""

    template = "EXTRACT(EPOCH FROM (%(expressions)s))"
    arg_joiner = " - "
    output_field = FloatField()


def percentile_cont(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile of sorted ``values``, interpolated as PostgreSQL's ``percentile_cont``."""
    position = fraction * (len(values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return values[low] + (values[high] - values[low]) * (position - low)


def bounded_days(raw: str | None) -> int:
    """The window asked for by ``?days=``: a whole number of days from 1 to ``MAX_DAYS``."""
    try:
        days = int(raw or DEFAULT_DAYS)
    except ValueError:
        return DEFAULT_DAYS
    return min(max(days, 1), MAX_DAYS)


def dashboard(days: int = DEFAULT_DAYS, now: datetime | None = None) -> Dashboard:
    """The counts of the last ``days`` days (today included), per provider and per day."""
    now = now or timezone.now()
    until = timezone.localdate(now)
    since = until - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(since, time.min))
    flows = CallAuthFlow.objects.filter(created_at__gte=start).order_by()
    per_day = _counts(flows, now)
    _add_percentiles(flows, per_day)
    window = [since + timedelta(days=n) for n in range(days)]
    providers = []
    for provider in sorted({provider for provider, _ in per_day}):
        total = Counts()
        for day in window:
            total.add(per_day.get((provider, day), Counts()))
        providers.append(
            ProviderStats(
                provider=provider,
                days=[(day, per_day.get((provider, day), Counts())) for day in window],
                total=total,
                price=provider_price(provider),
            )
        )
    _add_total_percentiles(flows, {stats.provider: stats.total for stats in providers})
    return Dashboard(since=since, until=until, providers=providers)


def _counts(flows: QuerySet[CallAuthFlow], now: datetime) -> dict[tuple[str, date], Counts]:
    """One aggregate query: the window's flows counted by provider, day, status and reason."""
    rows = (
        flows.annotate(day=TruncDate("created_at"))
        .values("provider", "day", "status", "failure_reason")
        .annotate(
            n=Count("pk"),
            billed=Count("pk", filter=~Q(provider_id="")),
            confirmed=Count("pk", filter=Q(confirmed_at__isnull=False)),
            late=Count("pk", filter=Q(status=FlowStatus.PENDING, expires_at__lte=now)),
            failovers=Count("pk", filter=~Q(first_provider="") & ~Q(first_provider=F("provider"))),
        )
    )
    per_day: dict[tuple[str, date], Counts] = defaultdict(Counts)
    for row in rows:
        counts = per_day[row["provider"], row["day"]]
        counts.starts += row["n"]
        counts.billed += row["billed"]
        counts.confirmed += row["confirmed"]
        counts.failovers += row["failovers"]
        counts.expired += row["late"]
        if row["status"] == FlowStatus.USED:
            counts.used += row["n"]
        elif row["status"] == FlowStatus.EXPIRED:
            counts.expired += row["n"]
        elif row["status"] == FlowStatus.FAILED:
            counts.failed[row["failure_reason"]] = counts.failed.get(row["failure_reason"], 0) + row["n"]
    return dict(per_day)


def _confirmed(flows: QuerySet[CallAuthFlow]) -> QuerySet[CallAuthFlow]:
    return flows.filter(confirmed_at__isnull=False)


def _add_percentiles(flows: QuerySet[CallAuthFlow], per_day: dict[tuple[str, date], Counts]) -> None:
    """Median and p95 seconds from start to call, per provider and day."""
    if connection.vendor == "postgresql":
        rows = (
            _confirmed(flows)
            .annotate(day=TruncDate("created_at"))
            .values("provider", "day")
            .annotate(median=_percentile(0.5), p95=_percentile(0.95))
        )
        for row in rows:
            _set(per_day[row["provider"], row["day"]], row["median"], row["p95"])
        return
    durations: dict[tuple[str, date], list[float]] = defaultdict(list)
    for provider, created, confirmed in _durations(flows):
        durations[provider, timezone.localdate(created)].append((confirmed - created).total_seconds())
    for key, values in durations.items():
        _set_from(per_day[key], values)


def _add_total_percentiles(flows: QuerySet[CallAuthFlow], totals: dict[str, Counts]) -> None:
    """Median and p95 over the whole window, per provider (a median of medians is not one)."""
    if connection.vendor == "postgresql":
        rows = _confirmed(flows).values("provider").annotate(median=_percentile(0.5), p95=_percentile(0.95))
        for row in rows:
            _set(totals[row["provider"]], row["median"], row["p95"])
        return
    durations: dict[str, list[float]] = defaultdict(list)
    for provider, created, confirmed in _durations(flows):
        durations[provider].append((confirmed - created).total_seconds())
    for provider, values in durations.items():
        _set_from(totals[provider], values)


def _percentile(fraction: float) -> PercentileCont:
    return PercentileCont(EpochSeconds("confirmed_at", "created_at"), fraction)


def _durations(flows: QuerySet[CallAuthFlow]) -> Iterable[tuple[str, datetime, datetime]]:
    """The window's confirmed flows as (provider, created, confirmed): three columns, no models."""
    rows: Iterable[Any] = _confirmed(flows).values_list("provider", "created_at", "confirmed_at").iterator()
    return rows


def _set(counts: Counts, median: float, p95: float) -> None:
    counts.median_seconds, counts.p95_seconds = median, p95


def _set_from(counts: Counts, values: list[float]) -> None:
    values.sort()
    _set(counts, percentile_cont(values, 0.5), percentile_cont(values, 0.95))


def provider_price(name: str) -> Price | None:
    """The price per start that the balance command stored for ``name``, if it is usable.

    The entry is another command's, possibly from another version: anything but a dict
    with a decimal ``price`` and a ``currency`` string counts as no price.
    """
    entry = caches[app_settings.CACHE].get(balances.cache_key(name))
    if not isinstance(entry, dict):
        return None
    price, currency = entry.get("price"), entry.get("currency")
    if not isinstance(price, str) or not isinstance(currency, str):
        return None
    try:
        amount = Decimal(price)
    except InvalidOperation:
        return None
    return Price(amount, currency) if amount.is_finite() and amount >= 0 else None
