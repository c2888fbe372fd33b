"""The dashboard's numbers: counts per provider, day, status and reason; exact percentiles; failovers; cost."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from django_callauth import stats
from django_callauth.flows.start import start_new
from django_callauth.models import FailureReason, FlowStatus
from django_callauth.providers import balances
from tests.helpers import Clock, FlowFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _afternoon(clock: Clock) -> Clock:
    """Time stands at T0, 15:00 in Moscow: today's noon has passed (at 00:30 it would be ahead)."""
    return clock


def noon(days_ago: int) -> datetime:
    """Noon of a local day: never on the edge of a day."""
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time(12)))


def confirmed(flow_factory: FlowFactory, created: datetime, seconds: float, **fields: Any) -> None:
    fields.setdefault("status", FlowStatus.CONFIRMED)
    flow_factory(created_at=created, confirmed_at=created + timedelta(seconds=seconds), caller="+79001234567", **fields)


def provider(board: stats.Dashboard, name: str) -> stats.ProviderStats:
    return next(entry for entry in board.providers if entry.provider == name)


def day(entry: stats.ProviderStats, days_ago: int) -> stats.Counts:
    return dict(entry.days)[timezone.localdate() - timedelta(days=days_ago)]


def test_counts_per_provider_day_status_and_reason(clock: Clock, flow_factory: FlowFactory) -> None:
    # At T0, past midday: the pending flow of 11:00 is past its two minutes (at the real time it may be to come).
    today, yesterday = noon(0), noon(1)
    confirmed(flow_factory, today, 5, status=FlowStatus.USED)
    confirmed(flow_factory, today, 7, status=FlowStatus.USED)
    confirmed(flow_factory, today, 9)  # confirmed, not used (yet)
    confirmed(flow_factory, today, 4, status=FlowStatus.FAILED, failure_reason=FailureReason.NO_ACCOUNT)
    flow_factory(created_at=today, status=FlowStatus.EXPIRED)
    flow_factory(created_at=today - timedelta(hours=1))  # pending past its two minutes: expired too
    flow_factory(created_at=today, status=FlowStatus.FAILED, failure_reason=FailureReason.PHONE_MISMATCH)
    flow_factory(created_at=today, status=FlowStatus.FAILED, failure_reason=FailureReason.PHONE_MISMATCH)
    flow_factory(created_at=yesterday, status=FlowStatus.FAILED, failure_reason=FailureReason.PROVIDER_ERROR)
    flow_factory(created_at=yesterday, provider="telefon_ip", status=FlowStatus.USED)
    flow_factory(created_at=noon(14))  # outside the 14 days

    board = stats.dashboard()

    assert [entry.provider for entry in board.providers] == ["sandbox", "telefon_ip"]
    assert (board.since, board.until) == (timezone.localdate() - timedelta(days=13), timezone.localdate())
    sandbox = provider(board, "sandbox")
    assert len(sandbox.days) == 14
    counts = day(sandbox, 0)
    assert (counts.starts, counts.confirmed, counts.used, counts.expired) == (8, 4, 2, 2)
    assert counts.failed == {FailureReason.NO_ACCOUNT: 1, FailureReason.PHONE_MISMATCH: 2}
    assert day(sandbox, 1).failed == {FailureReason.PROVIDER_ERROR: 1}
    assert day(sandbox, 2) == stats.Counts()
    assert (sandbox.total.starts, sandbox.total.failed_total) == (9, 4)
    assert (provider(board, "telefon_ip").total.starts, provider(board, "telefon_ip").total.used) == (1, 1)


def test_median_and_p95_from_start_to_call(flow_factory: FlowFactory) -> None:
    for seconds in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]:  # p95 at position 9.5: 10.5
        confirmed(flow_factory, noon(0), seconds, status=FlowStatus.USED)
    confirmed(flow_factory, noon(1), 30)
    confirmed(flow_factory, noon(1), 40)
    flow_factory(created_at=noon(2), status=FlowStatus.EXPIRED)

    sandbox = provider(stats.dashboard(), "sandbox")

    assert (day(sandbox, 0).median_seconds, day(sandbox, 0).p95_seconds) == pytest.approx((6, 10.5))
    assert (day(sandbox, 1).median_seconds, day(sandbox, 1).p95_seconds) == pytest.approx((35, 39.5))
    assert (day(sandbox, 2).median_seconds, day(sandbox, 2).p95_seconds) == (None, None)
    # Over the window: the 13 times together, not an average of the days' medians.
    assert (sandbox.total.median_seconds, sandbox.total.p95_seconds) == pytest.approx((7, 34))


def test_failovers_are_flows_started_by_another_provider_than_the_first(flow_factory: FlowFactory) -> None:
    flow_factory(created_at=noon(0), provider="sms_ru", first_provider="telefon_ip")
    flow_factory(created_at=noon(0), provider="sms_ru", first_provider="sms_ru")
    flow_factory(created_at=noon(0), provider="sms_ru", first_provider="")  # created before it was recorded

    assert provider(stats.dashboard(), "sms_ru").total.failovers == 1


def test_a_start_records_the_first_provider_asked(rf: Any, settings: Any) -> None:
    flow = start_new(rf.get("/"), "+79001234567", "")
    assert flow.first_provider == "sandbox" == flow.provider


def test_the_window_is_bounded() -> None:
    assert stats.bounded_days(None) == stats.DEFAULT_DAYS == 14
    assert stats.bounded_days("7") == 7
    assert stats.bounded_days("0") == 1
    assert stats.bounded_days("-5") == 1
    assert stats.bounded_days("100000") == stats.MAX_DAYS == 90
    assert stats.bounded_days("1e9") == 14
    assert len(stats.dashboard(1).days) == 1


def test_cost_is_billed_starts_times_the_known_price(flow_factory: FlowFactory) -> None:
    flow_factory(created_at=noon(0), provider="telefon_ip", provider_id="1", status=FlowStatus.USED)
    flow_factory(created_at=noon(1), provider="telefon_ip", provider_id="2", status=FlowStatus.EXPIRED)
    flow_factory(created_at=noon(1), provider="telefon_ip", provider_id="", status=FlowStatus.FAILED)  # never started
    flow_factory(created_at=noon(0), provider="sms_ru")
    entry = {"amount": "100.50", "currency": "RUB", "price": "0.45", "at": "2026-12-03T10:00:00+00:00"}
    cache.set(balances.cache_key("telefon_ip"), entry)

    board = stats.dashboard()

    telefon_ip = provider(board, "telefon_ip")
    assert (telefon_ip.total.billed, telefon_ip.price, telefon_ip.cost) == (
        2,
        stats.Price(Decimal("0.45"), "RUB"),
        Decimal("0.90"),
    )
    assert (provider(board, "sms_ru").price, provider(board, "sms_ru").cost) == (None, None)


@pytest.mark.parametrize(
    "entry",
    [
        "0.45",
        {"amount": "1", "currency": "RUB", "price": None},
        {"amount": "1", "currency": "RUB"},
        {"amount": "1", "currency": 643, "price": "0.45"},
        {"amount": "1", "currency": "RUB", "price": "cheap"},
        {"amount": "1", "currency": "RUB", "price": "NaN"},
        {"amount": "1", "currency": "RUB", "price": "-1"},
    ],
)
def test_an_unusable_balance_entry_is_no_price(entry: Any) -> None:
    cache.set(balances.cache_key("telefon_ip"), entry)
    assert stats.provider_price("telefon_ip") is None


def test_percentile_fraction_is_checked() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        stats.PercentileCont("confirmed_at", 95)
