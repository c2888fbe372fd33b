"""Cost limits (docs/security.rst, invariant 8): counted before any billed start, never exceeded.

The counting runs on the per-process LocMemCache and on a real Redis (the cache production
sites share between processes). Time is moved by the ``clock`` fixture; nothing sleeps.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.utils import translation

from django_callauth.guards import devices, limits
from django_callauth.guards.limits import Rate, RateLimited, RateLimiterUnavailable, consume_start, parse_rates
from django_callauth.models import CallAuthFlow
from tests.helpers import (
    OTHER_PHONE as OTHER,
)
from tests.helpers import (
    PHONE,
    START_POST,
    T0,
    Clock,
    SignalLog,
    assert_json_error,
    start,
    start_answer,
    tabs_of,
    url,
)
from tests.helpers.caches import use_redis_cache

pytestmark = pytest.mark.django_db

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}  # counts nothing
UNREACHABLE = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def phones(count: int) -> list[str]:
    return [f"+7900{i:07d}" for i in range(count)]


@pytest.fixture(params=["locmem", "redis"])
def limiter_cache(request: pytest.FixtureRequest, settings: Any) -> str:
    """The limits counted in each kind of cache; Redis is required where CI says so."""
    if request.param == "redis":
        use_redis_cache(settings)
    else:
        settings.CACHES = LOCMEM
        caches["default"].clear()
    return str(request.param)


def request_from(address: str = "203.0.113.7", **headers: str) -> HttpRequest:
    return RequestFactory().post("/", REMOTE_ADDR=address, **headers)


def allowed(request: HttpRequest, phone: str) -> bool:
    try:
        consume_start(request, phone)
    except RateLimited:
        return False
    return True


# -- rates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rates"),
    [
        ("10/m", [Rate(10, 60)]),
        ("10/m,100/h", [Rate(10, 60), Rate(100, 3600)]),
        ("3/10m", [Rate(3, 600)]),
        (" 5 / 2s , 1/d ", [Rate(5, 2), Rate(1, 86400)]),
    ],
)
def test_rates_read_like_allauths(text: str, rates: list[Rate]) -> None:
    assert parse_rates(text) == rates


@pytest.mark.parametrize("text", ["", "10", "10/", "10/w", "ten/m", "-1/m", "0/m", "1/0m", "10/m;5/h", "1.5/m"])
def test_unreadable_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rates(text)


# -- counting -------------------------------------------------------------------------


def test_a_burst_from_one_address_is_cut_at_ten_a_minute(limiter_cache: str, clock: Clock) -> None:
    request = request_from()
    results = [allowed(request, phone) for phone in phones(25)]
    assert results == [True] * 10 + [False] * 15


def test_the_limit_holds_in_every_rolling_minute_not_only_per_clock_minute(limiter_cache: str, clock: Clock) -> None:
    request = request_from()
    clock.now = T0.replace(second=59)  # the last second of a clock minute
    assert [allowed(request, p) for p in phones(10)] == [True] * 10
    clock.advance(2)  # a new clock minute: a fixed window would allow ten more here
    assert allowed(request, "+79009999999") is False
    clock.advance(58)  # 60 s after the burst, the buckets that held it are still in the rolling minute
    assert allowed(request, "+79009999999") is False
    clock.advance(10)
    assert allowed(request, "+79009999999") is True


def test_a_refusal_says_how_long_to_wait(limiter_cache: str, clock: Clock) -> None:
    request = request_from()
    for phone in phones(10):
        consume_start(request, phone)
    with pytest.raises(RateLimited) as refused:
        consume_start(request, "+79009999999")
    assert refused.value.scope == "ip"
    # The burst sits in the fine counter [T0, T0 + 1 s): it has left every rolling minute at T0 + 61 s.
    assert refused.value.retry_after == 61
    clock.advance(refused.value.retry_after - 1)
    assert allowed(request, "+79009999999") is False
    clock.advance(1)
    assert allowed(request, "+79009999999") is True


def test_one_phone_from_many_addresses_three_in_ten_minutes(limiter_cache: str, clock: Clock) -> None:
    results = [allowed(request_from(f"198.51.100.{i}"), PHONE) for i in range(10)]
    assert results == [True] * 3 + [False] * 7
    with pytest.raises(RateLimited) as refused:
        consume_start(request_from("192.0.2.1"), PHONE)
    assert refused.value.scope == "phone"


def test_refused_starts_count_nothing(limiter_cache: str, clock: Clock) -> None:
    # Five refusals for one phone leave the address's budget whole: seven more phones still fit.
    request = request_from()
    assert [allowed(request, PHONE) for _ in range(8)] == [True] * 3 + [False] * 5
    assert [allowed(request, phone) for phone in phones(8)] == [True] * 7 + [False]


def test_a_scope_set_to_none_is_off(limiter_cache: str, clock: Clock, settings: Any) -> None:
    settings.CALLAUTH_RATE_LIMITS = {"ip": None}
    request = request_from()
    assert all(allowed(request, phone) for phone in phones(30))


def test_with_every_scope_off_nothing_is_counted(clock: Clock, settings: Any) -> None:
    settings.CALLAUTH_RATE_LIMITS = {"ip": None, "phone": None, "global": None}
    settings.CACHES = DUMMY
    request = request_from()
    assert all(allowed(request, PHONE) for _ in range(30))


@pytest.mark.parametrize(
    ("limits", "scope"),
    [({"ip": "1/h", "phone": "1/m"}, "ip"), ({"ip": "1/m", "phone": "1/h"}, "phone")],
    ids=["first_waits_longer", "second_waits_longer"],
)
def test_when_two_scopes_refuse_the_longer_wait_is_answered(
    limiter_cache: str, clock: Clock, settings: Any, limits: dict[str, str], scope: str
) -> None:
    settings.CALLAUTH_RATE_LIMITS = {**limits, "global": None}
    request = request_from()
    consume_start(request, PHONE)
    with pytest.raises(RateLimited) as refused:
        consume_start(request, PHONE)
    assert (refused.value.scope, refused.value.retry_after > 60) == (scope, True)


def test_ipv6_networks_nest_56_and_48(limiter_cache: str, clock: Clock) -> None:
    # One household's /56 rotating its /64s, then its neighbours' /56s inside the same /48.
    household = [allowed(request_from(f"2001:db8:1:{i:x}::1"), p) for i, p in enumerate(phones(25))]
    assert household == [True] * 20 + [False] * 5
    site = [allowed(request_from(f"2001:db8:1:{(i + 1) << 8:x}::1"), p) for i, p in enumerate(phones(25))]
    assert site == [True] * 10 + [False] * 15  # the /48 holds 30 a minute
    assert allowed(request_from("2001:db8:2::1"), "+79009999999") is True  # another /48


def test_one_48_over_an_hour_spends_at_most_its_share(limiter_cache: str, clock: Clock, settings: Any) -> None:
    settings.CALLAUTH_RATE_LIMITS = {"ip": None, "ipv6_56": None, "phone": None, "global": None}  # the /48's alone
    passed = 0
    for minute in range(60):
        requests = [request_from(f"2001:db8:1:{i << 8:x}::1") for i in range(32)]
        passed += sum(allowed(request, f"+7902{minute:03d}{i:04d}") for i, request in enumerate(requests))
        clock.advance(60)
    assert passed == 300  # 30 a minute for ten minutes, then nothing: under a third of the site's hour


def test_a_refusals_wait_is_true_to_its_rule(clock: Clock, settings: Any) -> None:
    # A burst then a refusal, at every phase of the counters: the wait is the rule's period,
    # never more than one fine counter (1/900 of it, at least a second) longer.
    for rate, period in [("3/10m", 600), ("5/h", 3600), ("2/d", 86400)]:
        settings.CALLAUTH_RATE_LIMITS = {"ip": None, "phone": rate, "global": None}
        fine = max(1, math.ceil(period / 900))
        for phase in range(0, period, period // 7 + 13):
            caches["default"].clear()
            clock.now = T0 + timedelta(seconds=phase)
            while allowed(request_from(), PHONE):
                pass
            with pytest.raises(RateLimited) as refused:
                consume_start(request_from(), PHONE)
            assert period <= refused.value.retry_after <= period + fine, (rate, phase)


def test_a_wait_reads_the_fine_counters_of_a_coarse_one(limiter_cache: str, clock: Clock, settings: Any) -> None:
    settings.CALLAUTH_RATE_LIMITS = {"ip": None, "phone": "2/h", "global": None}
    consume_start(request_from(), PHONE)  # at T0
    clock.advance(100)
    consume_start(request_from(), PHONE)
    clock.advance(300)  # both are in coarse counters (120 s) by now
    with pytest.raises(RateLimited) as refused:
        consume_start(request_from(), PHONE)
    assert refused.value.retry_after == 3600 - 400 + 4  # the first start's fine counter (4 s) leaves then


def test_a_start_that_lost_a_race_takes_its_increments_back(
    limiter_cache: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its first read saw room; a racing start took the last place before its increments.
    for phone in phones(10):
        consume_start(request_from(), phone)
    clock.advance(30)
    refusal = limits._refusal
    with monkeypatch.context() as patched, pytest.raises(RateLimited) as refused:
        patched.setattr(limits, "_refusal", lambda *a, taken: refusal(*a, taken=taken) if taken else None)
        consume_start(request_from(), PHONE)
    assert refused.value.retry_after == 31
    clock.advance(31)
    # Had it kept its increments (at T0 + 30 s), only nine would fit now.
    assert [allowed(request_from(), phone) for phone in phones(11)] == [True] * 10 + [False]


def test_racing_fine_counters_fall_back_to_the_coarse_bound() -> None:
    # Another start incremented the coarse counter but not yet its fine one: the coarse end bounds it.
    assert limits._leaving([(10, 1), (11, 0)], 2, 4, 120) == 120
    assert limits._leaving([(10, 1), (11, 1)], 2, 4, 120) == 48


def test_a_spent_global_budget_is_an_error_and_a_signal(
    limiter_cache: str, clock: Clock, settings: Any, sent: SignalLog, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CALLAUTH_RATE_LIMITS = {"global": "2/h", "phone": "1/d"}
    consume_start(request_from("192.0.2.1"), PHONE)
    consume_start(request_from("192.0.2.2"), OTHER)
    with caplog.at_level(logging.WARNING, logger="django_callauth"), pytest.raises(RateLimited) as refused:
        consume_start(request_from("192.0.2.3"), PHONE)  # the phone's day is spent too, and waits longer
    assert refused.value.scope == "global"
    assert refused.value.retry_after > 20 * 3600
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, f"Global start budget spent: new browsers' starts refused for {refused.value.retry_after} s")
    ]
    assert [e.kwargs["scope"] for e in sent.of("rate_limited")] == ["global"]


def test_the_global_budget_counts_per_hour_too(clock: Clock, settings: Any) -> None:
    settings.CALLAUTH_RATE_LIMITS = {"ip": None, "phone": None}  # the default global budget alone
    results = [allowed(request_from(), f"+7903{i:07d}") for i in range(1001)]
    assert results.count(True) == 1000
    with pytest.raises(RateLimited) as refused:
        consume_start(request_from("192.0.2.1"), PHONE)
    assert (refused.value.scope, refused.value.retry_after) == ("global", 3600 + 4)  # an hour, and a fine counter


def test_counters_are_the_sites_own(limiter_cache: str, clock: Clock, settings: Any) -> None:
    assert [allowed(request_from(), PHONE) for _ in range(4)] == [True] * 3 + [False]
    settings.SECRET_KEY = "another site on the same cache"
    assert allowed(request_from(), PHONE) is True
    keys = limits._key("phone", "x", Rate(3, 600), ("f", 1))
    assert settings.SECRET_KEY not in keys and limits._site() in keys


def test_the_start_lock_is_the_sites_own(settings: Any) -> None:
    browser = RequestFactory().post("/")
    browser.COOKIES = {"csrftoken": "c" * 32}
    with limits.one_start_at_a_time(browser):
        settings.SECRET_KEY = "another site on the same cache"
        with limits.one_start_at_a_time(browser):
            pass


# -- returning browsers (guards/devices.py) -------------------------------------------------------


def device_request(
    phone: str = PHONE, address: str = "203.0.113.7", device_of: HttpRequest | None = None
) -> HttpRequest:
    """A request from a browser whose device cookie proves ``phone`` (a new device unless ``device_of``)."""
    response = HttpResponse()
    devices.remember(device_of or request_from(address), response, phone)
    request = request_from(address)
    request.COOKIES = {
        **(device_of.COOKIES if device_of else {}),
        "callauth_device": response.cookies["callauth_device"].value,
    }
    return request


def test_a_returning_browser_has_an_allowance_strangers_do_not_spend(limiter_cache: str, clock: Clock) -> None:
    returning = device_request()
    assert [allowed(request_from(f"198.51.100.{i}"), PHONE) for i in range(5)] == [True] * 3 + [False] * 2
    assert [allowed(returning, PHONE) for _ in range(4)] == [True] * 3 + [False]


def test_many_devices_of_one_phone_share_its_allowance(limiter_cache: str, clock: Clock) -> None:
    # Anyone who owns a phone can make cookies for it, one login each: together they get 6 in 10 minutes.
    results = [allowed(device_request(address=f"198.51.100.{i}"), PHONE) for i in range(8)]
    assert results == [True] * 6 + [False] * 2


def test_the_address_limits_hold_for_returning_browsers(limiter_cache: str, clock: Clock) -> None:
    results = [allowed(device_request(phone), phone) for phone in phones(12)]
    assert results == [True] * 10 + [False] * 2


def test_a_device_cookie_remembers_its_last_phones(clock: Clock) -> None:
    request = request_from()
    for phone in phones(devices.MAX_PHONES + 2):
        request = device_request(phone, device_of=request)
    assert len(request.COOKIES["callauth_device"]) < 300
    proven = [devices.proven_device(request, phone) is not None for phone in phones(devices.MAX_PHONES + 2)]
    assert proven == [False] * 2 + [True] * devices.MAX_PHONES
    again = device_request(phones(7)[-1], device_of=request)  # proving a phone again keeps one entry for it
    assert devices.proven_device(again, phones(7)[2]) is not None


# -- failing closed --------------------------------------------------------------------


def test_an_unreachable_cache_refuses_and_logs_an_error(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.CACHES = UNREACHABLE
    with caplog.at_level(logging.ERROR, logger="django_callauth"), pytest.raises(RateLimiterUnavailable):
        consume_start(request_from(), PHONE)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "Rate limiter unavailable, start refused: ConnectionError: Error 111 connecting to 127.0.0.1:1. "
        "Connection refused."
    ]
    assert caplog.records[-1].exc_info is None  # no traceback chained to the backend's error


@pytest.mark.parametrize(
    ("name", "value"),
    [("CACHES", DUMMY), ("CALLAUTH_RATE_LIMITS", {"ip": "lots"})],
    ids=["dummy-cache", "unreadable-rate"],
)
def test_a_limiter_that_cannot_count_refuses_rather_than_allowing(settings: Any, name: str, value: Any) -> None:
    setattr(settings, name, value)
    with pytest.raises(RateLimiterUnavailable):
        consume_start(request_from(), PHONE)


# -- through the start view --------------------------------------------------------------


def billed_starts() -> int:
    """Every flow row is one start that reached the provider."""
    return CallAuthFlow.objects.count()


def test_the_eleventh_start_a_minute_gets_429_with_retry_after(client: Client, clock: Clock) -> None:
    for phone in phones(10):
        assert start(Client(), phone).status_code == 201
    response = start(client, "+79009999999")
    assert_json_error(response, 429, "rate_limited")
    assert response["Retry-After"] == "61"
    assert billed_starts() == 10


@pytest.mark.parametrize(
    ("seconds", "english", "russian"),
    [
        (1, "1 second", "1 секунду"),
        (2, "2 seconds", "2 секунды"),
        (5, "5 seconds", "5 секунд"),
        (21, "21 seconds", "21 секунду"),
        (90, "90 seconds", "90 секунд"),
        (601, "10 minutes", "10 минут"),  # a 10-minute rule and the counters' one second
        (86400 + 96, "24 hours", "24 часа"),  # a day's rule and its counters' 96 s
        (91, "2 minutes", "2 минуты"),
        (1260, "21 minutes", "21 минуту"),
        (5400, "90 minutes", "90 минут"),
        (5401, "2 hours", "2 часа"),
        (3600 * 5, "5 hours", "5 часов"),
    ],
)
def test_waits_are_said_in_whole_units_rounded_up(seconds: int, english: str, russian: str) -> None:
    with translation.override("en"):
        assert limits.format_wait(seconds) == english
    with translation.override("ru"):
        assert limits.format_wait(seconds) == russian


def test_the_html_form_shows_the_refusal_and_keeps_the_phone(client: Client, clock: Clock) -> None:
    for _ in range(3):
        start(Client(), PHONE)
    response = client.post(url("start"), {"phone": "8 900 123-45-67"})
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many attempts to log in by phone call. Try again in 10 minutes." in page
    assert 'value="8 900 123-45-67"' in page


def test_reusing_the_live_flow_counts_nothing(client: Client) -> None:
    for _ in range(10):
        assert start(client, PHONE).status_code == 201
    assert billed_starts() == 1
    for phone in phones(9):
        assert start(Client(), phone).status_code == 201  # the address still has 9 starts left


def test_invalid_phones_count_nothing(client: Client) -> None:
    for _ in range(20):
        assert start(client, "12345").status_code == 400
    assert start(client, PHONE).status_code == 201


def test_with_the_cache_down_no_provider_request_is_made(
    client: Client, telefon_ip_api: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CACHES = UNREACHABLE
    with caplog.at_level(logging.ERROR, logger="django_callauth"):
        response = start(client, PHONE)
    assert_json_error(response, 503, "rate_limiter_unavailable")
    assert len(telefon_ip_api.calls) == 0
    assert billed_starts() == 0
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def cookies(client: Client) -> dict[str, str]:
    return {name: morsel.value for name, morsel in client.cookies.items()}


def test_one_browser_cannot_start_twice_at_once(client: Client) -> None:
    start(client, PHONE)
    caches["default"].clear()  # forget that start's hold: this test is about one in flight
    in_flight = RequestFactory().post("/")
    in_flight.COOKIES = cookies(client)
    with limits.one_start_at_a_time(in_flight):
        response = start(client, "+79007654321")
    assert_json_error(response, 409, "start_in_progress")
    assert response["Retry-After"] == "1"
    assert billed_starts() == 1


@pytest.mark.parametrize("cookie", ["sessionid", "csrftoken"])
def test_a_duplicate_arriving_after_the_first_start_is_refused(cookie: str) -> None:
    # A double submit: both requests carry the same cookie; the first start replaced the
    # session key, so the second must not pass for a new browser.
    browser = Client()
    browser.cookies[cookie] = "k" * 32
    first, second = tabs_of(browser, 2)
    assert start(first, PHONE).status_code == 201
    assert start(second, PHONE).status_code == 409
    assert billed_starts() == 1


def test_a_failed_start_lets_the_browser_try_again_at_once(client: Client, telefon_ip_api: Any) -> None:
    client.cookies["csrftoken"] = "c" * 32
    telefon_ip_api.post(START_POST, status=500)
    assert start(client, PHONE).status_code == 503
    telefon_ip_api.replace("POST", START_POST, json=start_answer())
    assert start(client, PHONE).status_code == 201


class LocksRefusedCache(LocMemCache):
    """A cache that cannot take the start lock (``add``): Redis refusing the write."""

    def add(self, key: str, *args: Any, **kwargs: Any) -> bool:
        if "start-lock" in key:
            raise ConnectionError("OOM command not allowed when used memory > 'maxmemory'")
        return super().add(key, *args, **kwargs)


def test_a_start_lock_that_cannot_be_taken_refuses_the_start(
    client: Client, telefon_ip_api: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.LocksRefusedCache"}}
    client.cookies["csrftoken"] = "c" * 32
    with caplog.at_level(logging.ERROR, logger="django_callauth"):
        response = start(client, PHONE)
    assert_json_error(response, 503, "rate_limiter_unavailable")
    assert len(telefon_ip_api.calls) == 0
    assert billed_starts() == 0
    assert [r.getMessage() for r in caplog.records if r.name == "django_callauth"] == [
        "Rate limiter unavailable, start refused: ConnectionError: OOM command not allowed when used memory > "
        "'maxmemory'"
    ]


def test_a_start_lock_that_cannot_be_held_still_starts_and_is_logged(
    client: Client, telefon_ip_api: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A cache refusing writes (set) after the lock was taken: the lock expires by itself.
    settings.CACHES = {"default": {"BACKEND": "tests.test_hot_path.WritesRefusedCache"}}
    telefon_ip_api.post(START_POST, json=start_answer())
    client.cookies["csrftoken"] = "c" * 32
    with caplog.at_level(logging.WARNING, logger="django_callauth"):
        assert start(client, PHONE).status_code == 201
    assert billed_starts() == 1
    assert "Could not release the start lock: ConnectionError" in [r.getMessage() for r in caplog.records]
