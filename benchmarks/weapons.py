"""Turn the cost limits against the people they protect, on the real stack, and count what got through.

The example site runs under gunicorn (4 workers x 4 threads, ``DEBUG=False``) on PostgreSQL
and Redis, with the loopback telefon-ip fake as its provider (check mode) and the default
``CALLAUTH_RATE_LIMITS``. This script plays the site's one trusted proxy
(``CALLAUTH_TRUSTED_PROXY_COUNT=1``), so each request claims its client address in
``X-Forwarded-For``. "Billed" is what the fake provider was asked to start. The cache is
flushed before each scenario (each is measured on counters of its own); every loop is
bounded in requests and time, and nothing leaves loopback.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/callauth_measure \\
    BENCH_CACHE_URL=redis://127.0.0.1:6379/8 .venv/bin/python benchmarks/weapons.py

``--global-budget 200/h,10000/d`` runs the third scenario on a smaller hourly budget (the
same code path, a smaller number) where 1,000 starts would take too long.
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.clients import LoginClient
from benchmarks.stack import Site, example_site, fake_provider_environment, flush_cache, machine
from tests.fake_telefon_ip import FakeTelefonIp

THREADS = 16
BURST = 150
STRANGERS = 10
VICTIM_PHONE = "+79001234567"
VICTIM_ADDRESS = "192.0.2.50"
START_ACTIONS = {"reverse_auth_phone_get", "reverse_auth_phone_post"}
#: The refusal of a spent site budget, as the English message says it (errors.RATE_LIMITED_SITE).
SITE_REFUSAL = "Too many people are logging in"


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: int | None
    code: str
    message: str


def answer_of(response: requests.Response) -> Answer:
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    retry = response.headers.get("Retry-After")
    return Answer(
        response.status_code, int(retry) if retry else None, str(body.get("error", "")), str(body.get("message", ""))
    )


def stranger(base: str) -> requests.Session:
    """A browser that never loaded a page: a CSRF cookie of its own choosing, in English."""
    session = requests.Session()
    token = secrets.token_hex(16)
    session.cookies.set("csrftoken", token)
    session.headers.update(
        {"X-CSRFToken": token, "Accept": "application/json", "Accept-Language": "en", "Referer": base + "/"}
    )
    return session


def start_from(site: Site, session: requests.Session, phone: str, address: str) -> Answer:
    # The left entry is the client's own word, which the trusted proxy count makes the site ignore.
    forwarded = f"{secrets.randbelow(255)}.0.0.1, {address}"
    response = session.post(
        site.url + "/callauth/start/", data={"phone": phone}, headers={"X-Forwarded-For": forwarded}, timeout=30
    )
    return answer_of(response)


def billed(fake: FakeTelefonIp) -> int:
    return sum(1 for r in fake.requests if r.action in START_ACTIONS)


def burst(count: int, send: Callable[[int], Answer], *, stop: Callable[[Answer], bool] | None = None,
          seconds: float = 120.0) -> list[Answer]:  # fmt: skip
    """``send(i)`` for i < ``count`` from THREADS threads; the answers, once ``stop`` says so or time is up."""
    answers: list[Answer] = []
    lock = threading.Lock()
    counter = itertools.count()
    done = threading.Event()
    stop_at = time.monotonic() + seconds

    def loop() -> None:
        while not done.is_set() and time.monotonic() < stop_at and (i := next(counter)) < count:
            answer = send(i)
            with lock:
                answers.append(answer)
            if stop is not None and stop(answer):
                done.set()

    threads = [threading.Thread(target=loop) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def statuses(answers: list[Answer]) -> dict[int, int]:
    return dict(sorted(Counter(a.status for a in answers).items()))


def retry_afters(answers: list[Answer]) -> str:
    waits = [a.retry_after for a in answers if a.retry_after is not None]
    return f"Retry-After {min(waits)}-{max(waits)} s" if waits else "no Retry-After"


def row(what: str, result: str, bar: str) -> None:
    print(f"{what:<62} {result:<44} (target {bar})")


class Victim:
    """Her browser: the page's requests from one address, a real login by call, her device cookie kept."""

    def __init__(self, site: Site, fake: FakeTelefonIp) -> None:
        self.fake = fake
        self.browser = LoginClient(site.url, "victim")
        self.browser.session.headers.update({"X-Forwarded-For": VICTIM_ADDRESS, "Accept-Language": "en"})
        self.browser.open_login_page()

    def start(self) -> tuple[Answer, str]:
        response = self.browser.start(VICTIM_PHONE)
        return answer_of(response), response.json().get("call_to", "") if response.status_code == 201 else ""

    def log_in(self) -> Answer:
        """Start, call, and finish as the page does; then log out, as a returning visitor would have."""
        started, call_to = self.start()
        if started.status != 201:
            return started
        self.fake.make_call(call_to, VICTIM_PHONE)  # check mode: the site asks the provider
        deadline = time.monotonic() + 30
        while self.browser.status() == "pending" and time.monotonic() < deadline:
            time.sleep(0.5)
        finished = answer_of(self.browser.complete())
        if finished.status == 200:
            assert self.browser.logged_in_phone() == VICTIM_PHONE, "the login did not log her in"
            self.browser.request("POST", "/logout/", headers={"Accept": "text/html"}, allow_redirects=False)
        return finished

    @property
    def has_device_cookie(self) -> bool:
        return "callauth_device" in self.browser.session.cookies


def rotating_ipv6(site: Site, fake: FakeTelefonIp) -> None:
    flush_cache()
    before, began = billed(fake), time.monotonic()
    # 2001:db8:1::/48; request i comes from its own /56 (2001:db8:1:ii00::/56) and so its own /64.
    answers = burst(BURST, lambda i: start_from(site, stranger(site.url), f"+7900{i:07d}", f"2001:db8:1:{i:02x}00::1"))
    took = time.monotonic() - began
    row(f"one IPv6 /48, a new /64 and /56 per start: burst of {BURST}",
        f"{billed(fake) - before} billed, {statuses(answers)} in {took:.1f} s", "30: ipv6_48 30/m")  # fmt: skip


def one_ipv4(site: Site, fake: FakeTelefonIp) -> None:
    flush_cache()
    before, began = billed(fake), time.monotonic()
    answers = burst(BURST, lambda i: start_from(site, stranger(site.url), f"+7901{i:07d}", "203.0.113.7"))
    took = time.monotonic() - began
    row(f"one IPv4 address, a new phone and browser per start: burst of {BURST}",
        f"{billed(fake) - before} billed, {statuses(answers)} in {took:.1f} s", "10: ip 10/m")  # fmt: skip


def strangers_for_her_phone(site: Site, fake: FakeTelefonIp) -> Victim:
    flush_cache()
    victim = Victim(site, fake)
    login = victim.log_in()
    row("her login by call (start, call, complete)",
        f"{login.status}, device cookie {'kept' if victim.has_device_cookie else 'MISSING'}", "200, kept")  # fmt: skip
    before = billed(fake)
    answers = [start_from(site, stranger(site.url), VICTIM_PHONE, f"198.51.100.{i + 1}") for i in range(STRANGERS)]
    row(f"{STRANGERS} strangers' starts for her phone (fresh browsers, own addresses)",
        f"{billed(fake) - before} billed, {statuses(answers)}, {retry_afters(answers)}",
        "2: phone 3/10m, her login took 1")  # fmt: skip
    before = billed(fake)
    mine, call_to = victim.start()
    row("then her own browser's start", f"{mine.status}, {billed(fake) - before} billed, "
        f"Retry-After {mine.retry_after}", "201, not refused at all")  # fmt: skip
    if mine.status == 201:  # and she logs in with it: the number she was given works
        victim.fake.make_call(call_to, VICTIM_PHONE)
        deadline = time.monotonic() + 30
        while victim.browser.status() == "pending" and time.monotonic() < deadline:
            time.sleep(0.5)
        again = answer_of(victim.browser.complete())
        if again.status == 200:
            victim.browser.request("POST", "/logout/", headers={"Accept": "text/html"}, allow_redirects=False)
        row("and she logs in with it", f"{again.status}", "200")
    fresh = start_from(site, stranger(site.url), VICTIM_PHONE, "198.51.100.200")
    row("a fresh browser's start for her phone", f"{fresh.status} {fresh.code}, Retry-After {fresh.retry_after} s",
        "429, ~600 s: her login's start leaves 3/10m")  # fmt: skip
    return victim


def global_budget(site: Site, fake: FakeTelefonIp, victim: Victim, budget: str) -> None:
    flush_cache()
    limit = int(budget.split("/", 1)[0])
    before, began = billed(fake), time.monotonic()

    def anonymous(i: int) -> Answer:
        # A new /48 every 20 starts (within its 30/m), a new /64 and phone and browser every start.
        return start_from(site, stranger(site.url), f"+7902{i:07d}", f"2001:db8:{0x100 + i // 20:x}:{i % 20:x}::1")

    answers = burst(limit + 100, anonymous, stop=lambda a: a.status == 429, seconds=180)
    took = time.monotonic() - began
    refusals = [a for a in answers if a.status == 429]
    global_refusals = [a for a in refusals if a.message.startswith(SITE_REFUSAL)]
    row(f"anonymous starts from many /48s until refused (global {budget})",
        f"{billed(fake) - before} billed, {statuses(answers)} in {took:.1f} s", f"{limit}")  # fmt: skip
    row("  the refusal", f"{len(global_refusals)} of {len(refusals)} the site's, {retry_afters(refusals)}",
        "the site's, <= 3600 s")  # fmt: skip
    before = billed(fake)
    mine, _ = victim.start()
    row("then her returning browser's start", f"{mine.status}, {billed(fake) - before} billed", "201, 1 billed")
    fresh = start_from(site, stranger(site.url), "+79031234567", "2001:db8:ffff::1")
    row("a new anonymous browser's start", f"{fresh.status} {fresh.code}, Retry-After {fresh.retry_after} s, "
        f"{'the site' if fresh.message.startswith(SITE_REFUSAL) else 'NOT the site'}'s refusal",
        "429, <= 3600 s")  # fmt: skip


def server_errors(site: Site) -> int:
    """The 5xx answers gunicorn logged (read once it has stopped: its log is then complete)."""
    return sum(1 for served in site.served() if served.status >= 500)


def run(global_rates: str | None) -> None:
    print(machine())
    logs = Path(tempfile.mkdtemp(prefix="callauth-weapons-"))
    errors = 0
    with FakeTelefonIp() as fake:
        # "{}": every limit at its default (fake_provider_environment would raise them).
        env = fake_provider_environment(fake, CALLAUTH_RATE_LIMITS="{}", CALLAUTH_TRUSTED_PROXY_COUNT="1")
        with example_site(env, reset=True, logs=logs) as site:
            rotating_ipv6(site, fake)
            one_ipv4(site, fake)
            victim = strangers_for_her_phone(site, fake)
            if global_rates is None:
                global_budget(site, fake, victim, "1000/h,10000/d")
        errors += server_errors(site)
        if global_rates is not None:
            smaller = {**env, "CALLAUTH_RATE_LIMITS": json.dumps({"global": global_rates})}
            with example_site(smaller, logs=logs) as site:
                victim.browser.base_url = site.url  # another port; her cookies are the host's
                global_budget(site, fake, victim, global_rates)
            errors += server_errors(site)
        failures = [r for r in fake.requests if r.action not in START_ACTIONS | {"reverse_auth_phone_check"}]
        print(f"provider requests other than start/check: {len(failures)}; 5xx answers of the site: {errors}")
    print(machine())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--global-budget", help="the global rates of the third scenario only, e.g. 200/h,10000/d")
    run(parser.parse_args().global_budget)
