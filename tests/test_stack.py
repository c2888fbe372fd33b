"""Hundreds of concurrent logins on the stack a site that outgrew one process runs.

The example site runs under gunicorn (WSGI) with several workers and threads, and under
uvicorn (ASGI) with as many workers, on PostgreSQL (its
own database, never the test one) and a shared Redis (its own database number), with the
telefon-ip fake on loopback. Each browser sends every request on a new connection, as a
load balancer spreads them, so its start, its polls, its finish and the provider's webhook
land on whichever worker takes them: the flow must live in the database and the limits
and any cached state in the shared cache, or logins fail here.

Every login must succeed exactly once: each browser ends logged in as its phone, the
database has exactly one used flow per phone, the provider was asked to start exactly once
per login (and, in webhook mode, at most twice in all), and no request anywhere got a 5xx.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from benchmarks.clients import LoginClient, LoginTimes, run_all
from benchmarks.stack import (
    SERVERS,
    Site,
    database_environment,
    example_site,
    fake_provider_environment,
    flow_rows,
    free_port,
    provider_requests_by_phone,
)
from tests.fake_telefon_ip import FakeTelefonIp
from tests.helpers import STACK_CACHE_URL, STACK_DATABASE_URL

pytestmark = pytest.mark.stack

LOGINS = 200
WORKERS, THREADS = 4, 4
CHECK_INTERVAL = 1  # seconds; the default 3 would only make the test longer
POLL_SECONDS = 1.0  # as often as the page polls (challenge.js, POLL_MS)
#: Every 4th browser finishes from two tabs at once: exactly one of them may log in.
TWO_TABS_EVERY = 4


@dataclass
class Login:
    phone: str
    times: LoginTimes
    logged_in_as: str | None = None
    finishers: tuple[int, ...] = ()  # the HTTP statuses of "complete", one per tab
    sent: list[tuple[str, int, float]] = field(default_factory=list)  # every request its tabs sent


def stack_env(fake: FakeTelefonIp, webhook_base_url: str, server: str) -> dict[str, str]:
    return fake_provider_environment(
        fake,
        webhook_base_url=webhook_base_url,
        **database_environment(STACK_DATABASE_URL, server),
        CACHE_URL=STACK_CACHE_URL,
        CALLAUTH_CHECK_INTERVAL=str(CHECK_INTERVAL),
        CALLAUTH_LOG_LEVEL="ERROR",
    )


def log_in(site: Site, fake: FakeTelefonIp, phone: str, i: int, webhook: bool) -> Login:
    """One person: opens the page, starts, calls after a moment, and lets the page finish."""
    rng = random.Random(i)
    browser = LoginClient(site.url, phone)
    login = Login(phone, LoginTimes())
    browser.open_login_page()
    started = browser.start(phone)
    assert started.status_code == 201, started.text
    login.times.started = time.monotonic()
    time.sleep(rng.uniform(0.5, 3))  # finding the phone, dialling
    answered = fake.make_call(started.json()["call_to"], phone)
    assert answered == (200 if webhook else None)
    login.times.called = time.monotonic()
    status = browser.poll_until_decided(POLL_SECONDS, login.times, deadline=time.monotonic() + 60)
    assert status == "confirmed", status
    login.times.confirmed_seen = time.monotonic()
    tabs = [browser, browser.copy(phone)] if i % TWO_TABS_EVERY == 0 else [browser]
    answers: list = [None] * len(tabs)

    def finish(k: int) -> None:
        answers[k] = tabs[k].complete()

    assert not run_all(len(tabs), finish)
    login.times.logged_in = time.monotonic()
    login.finishers = tuple(answer.status_code for answer in answers)
    winners = [tab for tab, answer in zip(tabs, answers, strict=True) if answer.status_code == 200]
    if winners:
        login.logged_in_as = winners[0].logged_in_phone()
    login.sent = [request for tab in tabs for request in tab.sent]
    return login


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("mode", ["webhook", "check"])
def test_concurrent_logins_each_succeed_exactly_once_whichever_worker_serves_them(
    mode: str, server: str, fake_telefon_ip: FakeTelefonIp, tmp_path: Path
) -> None:
    fake = fake_telefon_ip
    webhook = mode == "webhook"
    port = free_port()
    env = stack_env(fake, f"http://127.0.0.1:{port}" if webhook else "", server)
    phones = [f"+79{'01' if webhook else '02'}{i:07d}" for i in range(LOGINS)]
    logins: dict[str, Login] = {}
    lock = threading.Lock()
    began = time.monotonic()
    with example_site(env, WORKERS, THREADS, port=port, logs=tmp_path, reset=True, server=server) as site:

        def person(i: int) -> None:
            login = log_in(site, fake, phones[i], i, webhook)
            with lock:
                logins[login.phone] = login

        # Started 20 ms apart: all are under way together (each takes seconds), without the
        # thundering herd of 200 starts in one instant that no site sees from people.
        errors = run_all(LOGINS, person, stagger=0.02)
    served = site.served()  # once the server has stopped: its access log is complete
    took = time.monotonic() - began
    assert not errors, f"{len(errors)} of {LOGINS} logins failed, e.g.: {errors[:3]!r}"
    latencies = sorted(seconds for login in logins.values() for _, _, seconds in login.sent)
    in_server = sorted(s.seconds for s in served)
    print(f"\n{LOGINS} {mode} logins on {server}, {WORKERS} workers in {took:.1f} s, {len(served)} requests; "
          f"latency p50 {latencies[len(latencies) // 2]:.3f} s, max {latencies[-1]:.3f} s as the browsers saw it, "
          f"p50 {in_server[len(in_server) // 2]:.3f} s, max {in_server[-1]:.3f} s in the server")  # fmt: skip

    # Each browser is logged in as its own phone, by exactly one of its tabs.
    assert {p: login.logged_in_as for p, login in logins.items()} == {p: p for p in phones}
    for login in logins.values():
        assert sorted(login.finishers) in ([200], [200, 400], [200, 409]), login

    # The database: one flow per phone, used.
    rows = flow_rows(STACK_DATABASE_URL)
    statuses: dict[str, list[str]] = defaultdict(list)
    for _, phone, status, _ in rows:
        statuses[phone].append(status)
    assert statuses == {p: ["used"] for p in phones}

    # The provider: one start per login; in webhook mode at most one check more; in check
    # mode one check per interval while the flow was pending, and one more.
    start_action = "reverse_auth_phone_post" if webhook else "reverse_auth_phone_get"
    assert {r.action for r in fake.requests} == {start_action, "reverse_auth_phone_check"}
    asked = provider_requests_by_phone(fake, STACK_DATABASE_URL)
    assert set(asked) == set(phones)
    for phone, login in logins.items():
        assert asked[phone]["start"] == 1, (phone, asked[phone])
        if webhook:
            assert asked[phone]["start"] + asked[phone]["check"] <= 2, (phone, asked[phone])
        else:
            pending = login.times.confirmed_seen - login.times.started
            assert asked[phone]["check"] <= math.ceil(pending / CHECK_INTERVAL) + 1, (phone, asked[phone], pending)

    # No 5xx anywhere: not to the browsers, not to the provider's webhook.
    client_statuses = Counter(status for login in logins.values() for _, status, _ in login.sent)
    assert all(status < 500 for status in client_statuses), client_statuses
    assert [s for s in served if s.status >= 500] == []
    if webhook:
        assert sum(1 for s in served if s.path.startswith("/callauth/webhook/")) == LOGINS

    # The requests really were spread over the workers, one login's requests over several.
    workers_of: dict[str, set[int]] = defaultdict(set)
    flow_phone = {flow_id: phone for flow_id, phone, _, _ in rows}
    for s in served:
        phone = s.client or flow_phone.get(s.path.split("/")[3] if s.path.startswith("/callauth/webhook/") else "")
        if phone:
            workers_of[phone].add(s.worker)
    spread = Counter(len(workers) for workers in workers_of.values())
    print(f"workers per login: {dict(sorted(spread.items()))}; requests per worker: "
          f"{dict(Counter(s.worker for s in served))}")  # fmt: skip
    assert len({s.worker for s in served}) == WORKERS
    assert sum(n for k, n in spread.items() if k > 1) >= LOGINS * 0.9
