"""Time from the provider's report to the browser being logged in, and provider requests per login.

The example site under gunicorn (4 workers x 4 threads) on PostgreSQL and Redis, the
telefon-ip fake on loopback, default settings (``CALLAUTH_CHECK_INTERVAL`` 3 s). Each
measured person opens the page, starts, dials for a few seconds (so the call falls at a
random moment of the page's poll cycle) and calls; their browser polls ``status`` as the
challenge page's script does (``--poll`` seconds after each answer; the script's is 2 s)
and posts ``complete`` as soon as it reads "confirmed".

* Webhook mode: from the moment the provider sends its webhook to the moment ``complete``
  answers (the login is done). The poll after the webhook verifies it with one ``check``.
* Check mode: from the moment the call is made to the moment ``complete`` answers.

Optionally under load: ``--waiting`` more people sit on the challenge page, polling at the
same pace, never calling (benchmarks/waiting.py). Bounded: every scenario ends when its
logins end, each login within 60 s.

    .venv/bin/python benchmarks/logins.py [--logins 60] [--waiting 250,500,1000] [--polls 2,1.5,1]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # appended: PYTHONPATH may name another app
from benchmarks.clients import LoginClient, LoginTimes, run_all
from benchmarks.stack import (
    Site,
    example_site,
    fake_provider_environment,
    free_port,
    machine,
    provider_requests_by_phone,
)
from benchmarks.waiting import WaitingBrowsers
from tests.fake_telefon_ip import FakeTelefonIp

CHECK_INTERVAL = 3  # the default


@dataclass
class Outcome:
    """One scenario: seconds from report to login, provider requests per login, polls."""

    to_login: list[float]
    requests_per_login: list[int]
    check_excess: list[float]  # checks made / (1 + pending seconds / interval): at most 1 is in bounds
    polls: list[int]
    failures: int
    waiting: str = ""
    late_webhooks: int = 0


def person(site: Site, fake: FakeTelefonIp, phone: str, poll: float, webhook: bool, seed: int) -> LoginTimes:
    rng = random.Random(seed)
    browser = LoginClient(site.url, phone)
    times = LoginTimes()
    browser.open_login_page()
    started = browser.start(phone)
    if started.status_code != 201:
        raise RuntimeError(f"start answered {started.status_code}")
    times.started = time.monotonic()
    stop = threading.Event()
    report = rng.uniform(3, 8)  # the moment of the call, seconds after the page opened

    def call() -> None:
        if not stop.wait(report):
            times.called = time.monotonic()  # the provider learns of it now and sends its webhook
            try:
                fake.make_call(started.json()["call_to"], phone)
            except OSError:  # the fake gives up on an answer after 5 s; the site may still take it
                times.webhook_late = True

    caller = threading.Thread(target=call)
    caller.start()
    try:
        status = browser.poll_until_decided(poll, times, deadline=time.monotonic() + 60)
    finally:
        stop.set()
        caller.join()
    if status != "confirmed":
        raise RuntimeError(f"the flow ended {status}")
    times.confirmed_seen = time.monotonic()
    if browser.complete().status_code != 200:
        raise RuntimeError("complete failed")
    times.logged_in = time.monotonic()
    return times


def scenario(webhook: bool, poll: float, logins: int, waiting: int, seed: int) -> Outcome:
    with FakeTelefonIp() as fake:
        port = free_port()
        env = fake_provider_environment(
            fake, webhook_base_url=f"http://127.0.0.1:{port}" if webhook else "", CALLAUTH_LOG_LEVEL="ERROR"
        )
        with example_site(env, port=port, reset=True) as site:
            cookies = waiting_cookies(site, waiting, seed)
            phones = [f"+79{50 + seed:02d}{i:07d}" for i in range(logins)]
            times: dict[str, LoginTimes] = {}
            lock = threading.Lock()

            def one(i: int) -> None:
                login = person(site, fake, phones[i], poll, webhook, seed * 1000 + i)
                with lock:
                    times[phones[i]] = login

            with WaitingBrowsers(site.url, cookies, poll, seconds=120) as load:
                failures = run_all(logins, one, stagger=0.1)
        asked = provider_requests_by_phone(fake, env["DATABASE_URL"])
    checks_bound = []
    for phone, login in times.items():
        if not webhook:  # one check per interval while pending, and one more
            pending = (login.confirmed_seen or 0) - (login.started or 0)
            checks_bound.append(asked[phone]["check"] / (1 + pending / CHECK_INTERVAL))
    waited = load.result
    return Outcome(
        to_login=[(t.logged_in or 0) - (t.called or 0) for t in times.values()],
        requests_per_login=[sum(asked[phone].values()) for phone in times],
        check_excess=checks_bound,
        polls=[t.polls for t in times.values()],
        failures=len(failures),
        late_webhooks=sum(t.webhook_late for t in times.values()),
        waiting=(f"{waiting} waiting browsers: {sum(waited.statuses.values())} polls, HTTP statuses {waited.statuses}, "
                 f"p50 {waited.p50 * 1e3:.0f} ms, p99 {waited.p99 * 1e3:.0f} ms") if waited and waiting else "",
    )  # fmt: skip


def waiting_cookies(site: Site, count: int, seed: int) -> list[str]:
    """``count`` people with a pending flow each, who will only poll; their session cookies."""
    cookies = [""] * count

    def start(i: int) -> None:
        browser = LoginClient(site.url, f"waiting-{i}")
        browser.open_login_page()
        if browser.start(f"+79{seed:02d}{i:07d}").status_code != 201:
            raise RuntimeError("a waiting browser could not start")
        cookies[i] = f"sessionid={browser.session.cookies['sessionid']}"

    for batch in range(0, count, 100):  # 100 at a time: a burst of 1,000 starts is no one's morning
        errors = run_all(min(100, count - batch), lambda i, b=batch: start(b + i))
        if errors:
            raise RuntimeError(f"{len(errors)} waiting browsers could not start: {errors[:3]!r}")
    return cookies


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (``p`` in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=60, help="measured logins per scenario")
    parser.add_argument("--waiting", default="1000", help="people waiting on the page, one loaded scenario each")
    parser.add_argument("--polls", default="2,1.5,1", help="poll intervals (seconds) to try in webhook mode")
    parser.add_argument("--no-check-mode", action="store_true")
    args = parser.parse_args()
    print("Machine:", machine(), flush=True)
    polls = [float(p) for p in args.polls.split(",") if p]
    waiting = [int(n) for n in args.waiting.split(",") if n]
    scenarios = [("webhook", p, 0) for p in polls] + [("webhook", 2.0, n) for n in waiting]
    scenarios += [] if args.no_check_mode else [("check", 2.0, 0)]
    print(f"{'mode':<8}{'poll s':>7}{'waiting':>8}{'logins':>7}{'failed':>7}{'p50 s':>7}{'p95 s':>7}{'max s':>7}"
          f"{'polls':>7}{'provider req/login':>20}")  # fmt: skip
    for seed, (mode, poll, waiting) in enumerate(scenarios, start=10):
        outcome = scenario(mode == "webhook", poll, args.logins, waiting, seed)
        requests = Counter(outcome.requests_per_login)
        print(f"{mode:<8}{poll:>7g}{waiting:>8}{len(outcome.to_login):>7}{outcome.failures:>7}"
              f"{percentile(outcome.to_login, 0.5):>7.2f}{percentile(outcome.to_login, 0.95):>7.2f}"
              f"{max(outcome.to_login, default=float('nan')):>7.2f}{statistics.median(outcome.polls or [0]):>7.0f}"
              f"{'  ' + str(dict(sorted(requests.items()))):>20}")  # fmt: skip
        if outcome.check_excess:
            print(f"    checks / (1 + pending seconds / {CHECK_INTERVAL}): max {max(outcome.check_excess):.2f}")
        if outcome.waiting:
            print("    " + outcome.waiting)
        if outcome.late_webhooks:
            print(f"    {outcome.late_webhooks} webhooks unanswered within the fake's 5 s (the logins went on)")
    print("Machine at the end:", machine())


if __name__ == "__main__":
    main()
