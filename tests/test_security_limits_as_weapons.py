"""Invariant 17: a defence never becomes a weapon.

Strangers try to turn the cost limits against others: one IPv6 allocation rotating its
/64s to spend the site's budget, starts for someone else's phone to lock her out, the
day's budget spent so that nobody logs in, a forged device cookie, a site sharing its
cache with another.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.core import signing
from django.test import Client

from django_callauth.guards import devices
from django_callauth.models import CallAuthFlow, CallAuthPhone
from tests.helpers import (
    JSON,
    OTHER_PHONE,
    PHONE,
    Clock,
    SignalLog,
    assert_json_error,
    complete,
    sandbox_confirm,
    start,
    url,
)

pytestmark = pytest.mark.django_db

DEVICE_COOKIE = "callauth_device"


def phones(count: int) -> list[str]:
    return [f"+7901{i:07d}" for i in range(count)]


def stranger(number: int) -> Client:
    """Someone else, somewhere else: an IPv4 address of their own."""
    return Client(REMOTE_ADDR=f"198.51.{number // 250}.{number % 250 + 1}")


def returning_browser(phone: str = PHONE) -> Client:
    """A browser that logged in by a call to ``phone`` (and logged out since): it holds a device cookie."""
    browser = Client(REMOTE_ADDR="203.0.113.50")
    sandbox_confirm(browser, phone)
    assert complete(browser).status_code == 200
    assert DEVICE_COOKIE in browser.cookies
    browser.post("/logout/")
    return browser


def billed() -> int:
    return CallAuthFlow.objects.count()


def test_one_ipv6_48_rotating_its_64s_cannot_spend_the_sites_budget(clock: Clock) -> None:
    # Every start from another /64 (and another /56) of one /48: the /48 is counted as one.
    statuses = [
        start(Client(REMOTE_ADDR=f"2001:db8:42:{i << 8:x}::1"), phone).status_code
        for i, phone in enumerate(phones(150))
    ]
    assert statuses.count(201) == 30
    assert billed() == 30
    assert start(Client(REMOTE_ADDR="2001:db8:43::1"), OTHER_PHONE).status_code == 201  # another /48


def test_strangers_starts_for_her_phone_do_not_lock_out_her_returning_browser(clock: Clock) -> None:
    victim = returning_browser()
    for number in range(10):  # 6 minutes apart, each gets through: the phone's day is spent
        clock.advance(360)
        start(stranger(number), PHONE)
    fresh = start(Client(), PHONE)  # a browser that never proved the phone
    assert_json_error(fresh, 429, "rate_limited")
    assert int(fresh["Retry-After"]) > 20 * 3600
    assert start(victim, PHONE).status_code == 201


def test_her_returning_browser_adds_her_own_phone_again_despite_strangers(clock: Clock) -> None:
    victim = returning_browser()
    victim.force_login(CallAuthPhone.objects.get(phone=PHONE).user)
    for number in range(10):
        start(stranger(number), PHONE)
    assert victim.post(url("phone_add"), {"phone": PHONE}, **JSON).status_code == 201


def test_a_phone_added_by_a_call_gives_the_browser_its_allowance(clock: Clock, alice: Any) -> None:
    browser = Client()
    browser.force_login(alice)
    assert browser.post(url("phone_add"), {"phone": OTHER_PHONE}, **JSON).status_code == 201
    browser.post(url("link_sandbox_call"), **JSON)
    assert browser.post(url("link_complete"), **JSON).status_code == 200
    for number in range(10):
        start(stranger(number), OTHER_PHONE)
    browser.post("/logout/")
    assert start(browser, OTHER_PHONE).status_code == 201


def test_with_the_sites_budget_spent_returning_browsers_still_get_in(
    clock: Clock, settings: Any, sent: SignalLog
) -> None:
    settings.CALLAUTH_RATE_LIMITS = {"global": "5/h,50/d"}
    victim = returning_browser()
    for number, phone in enumerate(phones(10)):  # a botnet spends the rest of the hour's budget
        start(stranger(number), phone)
        clock.advance(5)
    refused = start(stranger(99), OTHER_PHONE)
    assert_json_error(refused, 429, "rate_limited")
    assert sent.of("rate_limited")[-1].kwargs["scope"] == "global"
    assert 3500 <= int(refused["Retry-After"]) <= 3600
    assert start(victim, PHONE).status_code == 201
    assert billed() == 6


@pytest.mark.parametrize(
    "cookie",
    [
        "forged",
        signing.dumps({"d": "x" * 22, "p": []}, salt="another.salt"),
        signing.dumps(["not", "ours"], salt=devices.SALT),
    ],
    ids=["garbage", "signed-for-something-else", "not-our-shape"],
)
def test_a_device_cookie_we_did_not_sign_gives_nothing(clock: Clock, cookie: str) -> None:
    victim = returning_browser()
    for number in range(3):
        start(stranger(number), PHONE)
    forger = Client()
    forger.cookies[DEVICE_COOKIE] = cookie
    assert_json_error(start(forger, PHONE), 429, "rate_limited")
    assert start(victim, PHONE).status_code == 201  # the cookie this site signed


def test_an_expired_device_cookie_gives_nothing(clock: Clock, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = returning_browser()
    settings.CALLAUTH_DEVICE_COOKIE_AGE = 60
    later = time.time() + 61
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: later))  # signing reads the real clock
    for number in range(3):
        start(stranger(number), PHONE)
    assert_json_error(start(victim, PHONE), 429, "rate_limited")


def test_a_cookie_for_one_phone_gives_nothing_for_another(clock: Clock) -> None:
    victim = returning_browser(PHONE)
    for number in range(3):
        start(stranger(number), OTHER_PHONE)
    assert_json_error(start(victim, OTHER_PHONE), 429, "rate_limited")


def test_a_cookie_copied_to_many_machines_shares_one_allowance(clock: Clock) -> None:
    cookie = returning_browser().cookies[DEVICE_COOKIE].value
    statuses = []
    for number in range(10):
        copy = stranger(number)
        copy.cookies[DEVICE_COOKIE] = cookie
        statuses.append(start(copy, PHONE).status_code)
    assert statuses == [201] * 3 + [429] * 7  # the device's three in ten minutes, once for all copies
