"""Turn the cost limits against users, on Redis, with the limiter's clock moved: what gets through, who is locked out.

The limiter is called directly (``guards.limits.consume_start``, what every start and phone
added goes through), with the default ``CALLAUTH_RATE_LIMITS``, on a real Redis under a
fresh key prefix; time is moved, nothing sleeps, every loop is bounded.

    .venv/bin/python benchmarks/limits.py [--redis redis://127.0.0.1:6379/3]

``--redis`` names a database of its own: each measurement starts by flushing it.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

T0 = 1_900_000_000.0 + 20  # a whole second, 20 s into a minute
VICTIM = "+79001234567"


def setup(redis_url: str) -> None:
    import logging

    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="benchmark-only",
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": uuid.uuid4().hex,  # counters of this run only; they expire by themselves
            }
        },
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django_callauth"],
        USE_TZ=True,
    )
    django.setup()
    logging.disable(logging.CRITICAL)


class Limiter:
    """``consume_start`` at a moved clock: ``allowed(address, phone, device_of)`` and the refusal's wait."""

    def __init__(self) -> None:
        from django.core.cache import caches

        from django_callauth.guards import limits as throttling

        caches["default"].clear()  # each measurement on counters of its own (flushes --redis's database)
        self.throttling = throttling
        self.now = T0
        throttling._clock = lambda: self.now

    def start(self, address: str, phone: str, cookies: dict[str, str] | None = None) -> int:
        """0 when the start is allowed, else its ``Retry-After``."""
        from django.test import RequestFactory

        request = RequestFactory().post("/", REMOTE_ADDR=address)
        request.COOKIES = dict(cookies or {})
        try:
            self.throttling.consume_start(request, phone)
        except self.throttling.RateLimited as refused:
            return refused.retry_after
        return 0

    def locked_out_for(self, address: str, phone: str, cookies: dict[str, str] | None = None) -> float:
        """Seconds from now until this browser's start is allowed (bounded by two days); the clock moves."""
        began = self.now
        while self.now - began < 2 * 86400:
            wait = self.start(address, phone, cookies)
            if not wait:
                return self.now - began
            self.now += wait
        return float("inf")


def device_cookie(address: str, phone: str) -> dict[str, str]:
    """The cookie a login by call for ``phone`` leaves in a browser."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from django_callauth.guards import devices

    response = HttpResponse()
    devices.remember(RequestFactory().post("/", REMOTE_ADDR=address), response, phone)
    return {"callauth_device": response.cookies["callauth_device"].value}


def from_one(allocation: str, label: str) -> None:
    """Billed starts one allocation gets in a burst, and over an hour trying 100 a minute."""
    limiter = Limiter()
    addresses = {
        # A new /64 each time, in a new /56 each time too (the 65,536 /64s of one /48).
        "/48": lambda i: f"2001:db8:42:{((i % 256) << 8) | (i // 256 % 256):x}::1",
        "IPv4": lambda i: "198.51.100.7",
    }[allocation]
    burst = sum(not limiter.start(addresses(i), f"+7905{i:07d}") for i in range(200))
    hour, n = burst, 200
    for _minute in range(1, 60):
        limiter.now += 60
        for _ in range(100):
            hour += not limiter.start(addresses(n), f"+7905{n:07d}")
            n += 1
    print(f"{label:<44} burst {burst:>4} billed   one hour {hour:>5} billed (site's hour 1000, day 10000)")


def lockouts() -> None:
    limiter = Limiter()
    cookie = device_cookie("203.0.113.50", VICTIM)
    for i in range(10):  # strangers' starts for her phone, from ten addresses, six minutes apart
        limiter.start(f"192.0.2.{i + 1}", VICTIM)
        limiter.now += 360
    returning = limiter.locked_out_for("203.0.113.50", VICTIM, cookie)
    fresh = limiter.locked_out_for("203.0.113.51", VICTIM)
    print(f"{'victim after 10 strangers: returning browser':<44} locked out {returning:>8.0f} s")
    print(f"{'victim after 10 strangers: fresh browser':<44} locked out {fresh:>8.0f} s ({fresh / 3600:.1f} h)")


def global_budget() -> None:
    limiter = Limiter()
    spent = 0
    i = 0
    while not (wait := limiter.start(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", f"+7906{i:07d}")):
        spent, i = spent + 1, i + 1
    print(f"{'anonymous starts until the global budget is spent':<44} {spent:>5}; next anonymous waits {wait} s")
    # One returning browser (its own phone and address) tries every 10 minutes for 24 hours.
    served = tried = 0
    for step in range(144):
        cookie = device_cookie(f"203.0.113.{step % 250 + 1}", f"+7907{step:07d}")
        tried += 1
        served += not limiter.start(f"203.0.113.{step % 250 + 1}", f"+7907{step:07d}", cookie)
        limiter.now += 600
    print(f"{'returning browsers over the next 24 h':<44} {served}/{tried} got in")


def margins() -> None:
    """How much longer than its rule a refusal's Retry-After says, over every phase of the counters."""
    from django.conf import settings
    from django.core.cache import caches

    limiter = Limiter()

    for rate, period in [("3/10m", 600), ("1000/h", 3600), ("10/d", 86400)]:
        settings.CALLAUTH_RATE_LIMITS = dict.fromkeys(("ip", "phone", "global", "device", "device_phone"))
        settings.CALLAUTH_RATE_LIMITS["global"] = rate
        worst = 0
        for phase in range(0, period, period // 12 + 7):
            caches["default"].clear()
            limiter.now = T0 + phase
            while not (wait := limiter.start("198.51.100.9", VICTIM)):
                pass
            worst = max(worst, wait - period)
        print(f"{'Retry-After beyond the rule ' + rate:<44} at most {worst:>4} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    args = parser.parse_args()
    setup(args.redis)
    from_one("/48", "one IPv6 /48 rotating its /64s")
    from_one("IPv4", "one IPv4 address")
    lockouts()
    global_budget()
    margins()


if __name__ == "__main__":
    main()
