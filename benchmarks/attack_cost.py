"""Attack the cost limits as a script would, and count what the provider was asked to bill.

The loopback telefon-ip fake plays the provider; the example site runs under gunicorn
(4 workers x 4 threads) on PostgreSQL and Redis, behind one trusted proxy that this script
plays (``CALLAUTH_TRUSTED_PROXY_COUNT=1``: the rightmost ``X-Forwarded-For`` entry is the
client). Every attack is bounded in time and stops by itself.

    .venv/bin/python benchmarks/attack_cost.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import itertools
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.stack import example_site, flush_cache, site_environment
from tests.fake_telefon_ip import FakeTelefonIp

THREADS = 16


def attacker(base: str) -> requests.Session:
    """A script with a CSRF cookie of its own choosing: no page is ever loaded."""
    session = requests.Session()
    token = secrets.token_hex(16)
    session.cookies.set("csrftoken", token)
    session.headers.update({"X-CSRFToken": token, "Accept": "application/json", "Referer": base + "/"})
    return session


def hammer(seconds: float, send: Callable[[int], int]) -> Counter[int]:
    """``send(i)`` from THREADS threads for ``seconds``; the HTTP statuses it got."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    counter = itertools.count()
    stop_at = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < stop_at:
            status = send(next(counter))
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=loop) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def billed(fake: FakeTelefonIp, action: str = "reverse_auth_phone_get") -> int:
    return sum(1 for r in fake.requests if r.action == action)


def report(name: str, fake: FakeTelefonIp, statuses: Counter[int], seconds: float, bar: str) -> None:
    print(f"{name:<58} {billed(fake):>6} billed  {sum(statuses.values()):>6} requests  "
          f"{dict(sorted(statuses.items()))}  ({seconds:.0f} s; bar {bar})")  # fmt: skip


def run(seconds: float) -> None:
    with FakeTelefonIp() as fake:
        env = site_environment(
            CALLAUTH_PROVIDER="telefon_ip",
            CALLAUTH_TELEFON_IP_TOKEN=fake.token,
            CALLAUTH_TELEFON_IP_URL=fake.base_url,
            CALLAUTH_TRUSTED_PROXY_COUNT="1",
        )
        with example_site(env) as site:
            base = site.url
            start = base + "/callauth/start/"

            def post(session: requests.Session, phone: str, client: str) -> int:
                forwarded = f"{secrets.randbelow(255)}.0.0.1, {client}"  # the left part is the client's lie
                return session.post(start, data={"phone": phone}, headers={"X-Forwarded-For": forwarded}).status_code

            flush_cache()
            one_address = attacker(base)
            statuses = hammer(seconds, lambda i: post(one_address, f"+7900{i:07d}", "203.0.113.7"))
            report("one address, a new phone each request", fake, statuses, seconds, "<= 10 a minute")

            fake._requests.clear()
            flush_cache()
            statuses = hammer(seconds, lambda i: post(attacker(base), "+79001234567", f"198.51.{i // 250}.{i % 250}"))
            report("one phone, a new address and browser each request", fake, statuses, seconds, "<= 3 in 10 min")

            fake._requests.clear()
            flush_cache()
            session = attacker(base)
            statuses = hammer(seconds, lambda i: post(session, ("+79001111111", "+79002222222")[i % 2], "203.0.113.8"))
            report("one browser alternating two phones", fake, statuses, seconds, "<= 6")

            fake._requests.clear()
            flush_cache()
            browser = attacker(base)
            browser.post(start, data={"phone": "+79003333333"}, headers={"X-Forwarded-For": "203.0.113.9"})
            cookies = browser.cookies.copy()
            fake._requests.clear()
            flush_cache()
            barrier = threading.Barrier(20)
            results: list[int] = []

            def tab() -> None:
                session = attacker(base)
                session.cookies.update(cookies)
                session.headers["X-CSRFToken"] = cookies.get("csrftoken")
                barrier.wait()
                results.append(post(session, "+79004444444", "203.0.113.10"))

            tabs = [threading.Thread(target=tab) for _ in range(20)]
            for thread in tabs:
                thread.start()
            for thread in tabs:
                thread.join()
            report("20 concurrent starts from one browser", fake, Counter(results), 0, "1")

        fake._requests.clear()
        flush_cache()
        budget = {**env, "CALLAUTH_RATE_LIMITS": '{"ip": null, "phone": null, "global": "25/d"}'}
        with example_site(budget) as site:
            base = site.url
            start = base + "/callauth/start/"
            statuses = hammer(
                seconds,
                lambda i: (
                    attacker(base)
                    .post(
                        start,
                        data={"phone": f"+7901{i:07d}"},
                        headers={"X-Forwarded-For": f"10.{i // 250}.{i % 250}.1"},
                    )
                    .status_code
                ),
            )
            report("a global budget of 25 a day, many addresses and phones", fake, statuses, seconds, "25")

        fake._requests.clear()
        down = {**env, "CACHE_URL": "redis://127.0.0.1:1/0"}
        with example_site(down) as site:
            base = site.url
            start = base + "/callauth/start/"
            session = attacker(base)
            statuses = hammer(seconds / 4, lambda i: session.post(start, data={"phone": f"+7902{i:07d}"}).status_code)
            report("the cache down", fake, statuses, seconds / 4, "0")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each attack runs")
    run(parser.parse_args().seconds)
