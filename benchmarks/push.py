"""What people waiting on the challenge page cost the server: polling ``status`` every second, or push.

The example site under uvicorn (ASGI, ``--workers``), on PostgreSQL (a connection pool per
worker) and Redis (the cache, the limits), the telefon-ip fake on loopback in webhook mode,
the rate limits high. For each N of ``--waiting`` (250, 1,000, 5,000), one scenario per
channel on a fresh site, side by side:

* poll: N browsers, each with a pending flow, poll ``/callauth/status/`` 1 s after each
  answer (challenge.js's ``POLL_MS``), one connection per request;
* push: the same N hold the page's events stream open (``events_url`` of the challenge)
  instead, as its ``EventSource`` would.

Each waiting browser starts its own flow (the login page's request, 50 at a time) and then
waits at once, as a page does. They never call. Once all N have had a first answer (or
``--ramp`` seconds passed), for
``--window`` seconds: the CPU seconds the server's processes took (``/proc/<pid>/stat``,
utime + stime of uvicorn and its workers), those of the pool's PostgreSQL backends and of
the load generator itself, and ``--logins`` newcomers logging in meanwhile, spread over
the window: each opens the login page, starts, reads the challenge, waits by the same
channel (polls at 1 s, or the stream), calls after 2-5 s (the provider's webhook), and
posts ``complete`` once it reads "confirmed". Reported: requests per login (start,
challenge, polls or streams, complete), seconds from the webhook to logged in, and the
latency of the newcomers' own requests. Then the ratios poll / push.

Bounded: the flows live 120 s (telefon-ip's lifetime), so ramp + window stay under it (the
window is cut short after a long ramp); the waiting browsers stop at the window's end,
every login within 60 s. On 2 cores, 5,000 pollers at 1 s saturate the machine: the row
says how many had started and were answered (``ready``), and how many polls were
answered a second, against the 5,000 asked for. ``--channels poll,push,wsgi-poll`` adds
polling under gunicorn (WSGI, 2 workers a core x 4 threads) for reference.

    .venv/bin/python benchmarks/push.py [--waiting 250,1000,5000] [--window 30] [--logins 20] [--workers 2]
        [--channels poll,push,wsgi-poll] [--server uvicorn|gunicorn-uvicorn]
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # appended: PYTHONPATH may name another app
from benchmarks.clients import LoginClient, LoginTimes, run_all
from benchmarks.logins import percentile
from benchmarks.stack import (
    DATABASE_URL,
    Site,
    database_environment,
    example_site,
    fake_provider_environment,
    free_port,
    libpq_url,
    machine,
    process_cpu_seconds,
)
from benchmarks.waiting import Waited, WaitingBrowsers
from tests.fake_telefon_ip import FakeTelefonIp

POLL_SECONDS = 1.0  # challenge.js's POLL_MS
FLOW_LIFETIME = 120  # telefon-ip's numbers live this long: every waiting flow must outlive the window
#: poll and push under uvicorn; wsgi-poll: polling under gunicorn (2 workers a core, 4 threads each),
#: what a site without push runs (not by default: --channels poll,push,wsgi-poll).
CHANNELS = ("poll", "push")


@dataclass
class Newcomer:
    """One measured login while the others wait."""

    times: LoginTimes
    requests: int = 0  # from its start to its complete, both counted
    latencies: dict[str, float] = field(default_factory=dict)  # "start", "challenge", "complete": seconds


@dataclass
class Row:
    channel: str
    waiting: int
    ready: int = 0  # waiting browsers that had their first answer before the window
    ramp: float = 0.0  # seconds from the first waiting browser's start to the window
    window: float = 0.0
    server_cpu: float = 0.0  # CPU seconds over the window
    database_cpu: float = 0.0
    generator_cpu: float = 0.0
    answers: int = 0  # the waiting browsers' requests answered in the window
    waited: Waited | None = None
    newcomers: list[Newcomer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    note: str = ""

    def per_minute(self, seconds: float) -> float:
        return seconds / self.window * 60 if self.window else float("nan")

    def to_login(self) -> list[float]:
        return [(n.times.logged_in or 0) - (n.times.called or 0) for n in self.newcomers]


def newcomer(site: Site, fake: FakeTelefonIp, phone: str, channel: str, seed: int) -> Newcomer:
    rng = random.Random(seed)
    browser = LoginClient(site.url, phone)
    login = Newcomer(LoginTimes())
    browser.open_login_page()
    first = len(browser.sent)
    started = browser.start(phone)
    if started.status_code != 201:
        raise RuntimeError(f"start answered {started.status_code}: {started.text[:200]}")
    login.times.started = time.monotonic()
    challenge = browser.challenge()
    events_url = str(challenge.get("events_url") or "")
    if channel == "push" and not events_url:
        raise RuntimeError("the challenge offers no events_url: no push here")
    stop = threading.Event()

    def call() -> None:
        if not stop.wait(rng.uniform(2, 5)):  # finding the phone, dialling
            login.times.called = time.monotonic()  # the provider learns of it now and sends its webhook
            try:
                fake.make_call(started.json()["call_to"], phone)
            except OSError:  # the fake gives up on an answer after 5 s; the site may still take it
                login.times.webhook_late = True

    caller = threading.Thread(target=call)
    caller.start()
    try:
        deadline = time.monotonic() + 60
        if channel == "push":
            status = browser.listen_until_decided(events_url, login.times, deadline)
        else:
            status = browser.poll_until_decided(POLL_SECONDS, login.times, deadline)
    finally:
        stop.set()
        caller.join()
    if status != "confirmed":
        raise RuntimeError(f"the flow ended {status}")
    login.times.confirmed_seen = time.monotonic()
    finished = browser.complete()
    if finished.status_code != 200:
        raise RuntimeError(f"complete answered {finished.status_code}")
    login.times.logged_in = time.monotonic()
    sent = browser.sent[first:]
    login.requests = len(sent)
    login.latencies = {"start": sent[0][2], "challenge": sent[1][2], "complete": sent[-1][2]}
    return login


def database_backends(url: str) -> list[int]:
    """The PostgreSQL backends serving the site's database now (its workers' pools)."""
    import psycopg

    server, name = libpq_url(url).rsplit("/", 1)
    with psycopg.connect(server + "/postgres") as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'", (name,)
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def scenario(channel: str, waiting: int, args: argparse.Namespace, seed: int) -> Row:
    row = Row(channel, waiting)
    with FakeTelefonIp() as fake:
        port = free_port()
        server = "gunicorn" if channel == "wsgi-poll" else args.server
        env = fake_provider_environment(
            fake,
            webhook_base_url=f"http://127.0.0.1:{port}",
            **database_environment(DATABASE_URL, server),
            SESSION_ENGINE=args.sessions,
            CALLAUTH_LOG_LEVEL="ERROR",
        )
        workers = args.workers * 2 if server == "gunicorn" else args.workers
        with example_site(env, workers, 4, port=port, reset=True, server=server) as site:
            probe = LoginClient(site.url, "probe")
            probe.open_login_page()
            probe.start(f"+79{seed:02d}9999999")
            events_url = str(probe.challenge().get("events_url") or "")
            if channel == "push" and not events_url:
                row.note = "no events_url in the challenge: the site offers no push"
                return row
            began = time.monotonic()
            phones = [f"+79{seed:02d}{i:07d}" for i in range(waiting)]
            with WaitingBrowsers(
                site.url,
                [],
                POLL_SECONDS,
                seconds=args.ramp + args.window + 90,
                events_path=events_url if channel == "push" else "",
                phones=phones,
            ) as load:
                row.ready = load.wait_ready(waiting, args.ramp)
                row.ramp = time.monotonic() - began
                # The first flows expire FLOW_LIFETIME after their start: the window ends before.
                window = min(args.window, max(5.0, FLOW_LIFETIME - row.ramp - 5))
                backends = database_backends(env["DATABASE_URL"])
                cpu = (
                    site.cpu_seconds(),
                    {pid: process_cpu_seconds(pid) for pid in backends},
                    process_cpu_seconds(load.pid),
                )
                answers = load.answers
                window_began = time.monotonic()
                newcomers = [f"+79{seed:02d}8{i:06d}" for i in range(args.logins)]
                lock = threading.Lock()

                def one(i: int) -> None:
                    login = newcomer(site, fake, newcomers[i], channel, seed * 1000 + i)
                    with lock:
                        row.newcomers.append(login)

                # Spread over the window's first two thirds: each takes 3-7 s, and ends inside it.
                errors = run_all(args.logins, one, stagger=window * 2 / 3 / max(1, args.logins))
                time.sleep(max(0.0, window - (time.monotonic() - window_began)))
                row.window = time.monotonic() - window_began
                row.server_cpu = site.cpu_seconds() - cpu[0]
                # The backends alive through the window (the pool's are; gunicorn's come and go).
                row.database_cpu = sum(max(0.0, process_cpu_seconds(pid) - before) for pid, before in cpu[1].items())
                row.generator_cpu = process_cpu_seconds(load.pid) - cpu[2]
                row.answers = load.answers - answers
            row.waited = load.result
            row.failures = [repr(e)[:200] for e in errors]
    return row


def print_row(row: Row) -> None:
    if row.note:
        print(f"{row.channel:<10}{row.waiting:>7}  {row.note}")
        return
    to_login = row.to_login()
    requests = sorted(n.requests for n in row.newcomers)
    start = [n.latencies["start"] for n in row.newcomers]
    complete = [n.latencies["complete"] for n in row.newcomers]
    waited = row.waited
    rate = row.answers / row.window
    print(
        f"{row.channel:<10}{row.waiting:>7}{row.ready:>7}{row.per_minute(row.server_cpu):>9.1f}"
        f"{row.server_cpu / row.window * 100:>7.1f}%{row.per_minute(row.database_cpu):>8.1f}"
        f"{row.per_minute(row.generator_cpu):>8.1f}{len(row.newcomers):>5}/{len(row.newcomers) + len(row.failures):<3}"
        f"{percentile([float(r) for r in requests], 0.5):>6.0f}{(requests or [0])[-1]:>5}"
        f"{percentile(to_login, 0.5):>7.2f}{percentile(to_login, 0.95):>7.2f}"
        f"{percentile(start, 0.95) * 1e3:>8.0f}{percentile(complete, 0.95) * 1e3:>8.0f}"
    )
    if waited:
        print(
            f"           waiting: started and answered in {row.ramp:.0f} s ({waited.start_failed} starts refused), "
            f"{rate:.0f} requests/s in the window; in all HTTP statuses {waited.statuses}, "
            f"answer (a stream: its first event) p50 {waited.p50 * 1e3:.0f} ms, "
            f"p99 {waited.p99 * 1e3:.0f} ms; events {waited.events}, keep-alives {waited.keepalives}, "
            f"reconnects {waited.reconnects} ({waited.unanswered} after no answer), "
            f"fell back to polling {waited.fallbacks}"
        )
    for failure in row.failures[:3]:
        print(f"           failed: {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiting", default="250,1000,5000", help="people waiting on the page, one pair each")
    parser.add_argument("--window", type=float, default=30, help="seconds measured once all wait")
    parser.add_argument("--ramp", type=float, default=85, help="seconds at most for all to start and get an answer")
    parser.add_argument("--logins", type=int, default=20, help="newcomers measured in each window")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--server",
        default="uvicorn",
        help="uvicorn, or gunicorn-uvicorn: gunicorn with uvicorn_worker.UvicornWorker (pip install uvicorn-worker)",
    )
    parser.add_argument("--channels", default=",".join(CHANNELS))
    parser.add_argument("--sessions", default="django.contrib.sessions.backends.cached_db", help="SESSION_ENGINE")
    args = parser.parse_args()
    print("Machine:", machine(), flush=True)
    channels = [c for c in args.channels.split(",") if c]
    print(
        f"{'channel':<10}{'N':>7}{'ready':>7}{'cpu s/m':>9}{'core':>8}{'db s/m':>8}{'gen s/m':>8}{'ok':>5}{'':<4}"
        f"{'req':>6}{'max':>5}{'p50 s':>7}{'p95 s':>7}{'start':>8}{'compl':>8}"
    )
    print(f"{'':<10}{'':>7}{'':>7}{'':>9}{'':>8}{'':>8}{'':>8}{'':>9}{'/login':>11}{'webhook→in':>14}{'p95 ms':>16}")
    rows: list[Row] = []
    for seed, waiting in enumerate((int(n) for n in args.waiting.split(",") if n), start=20):
        for channel in channels:
            row = scenario(channel, waiting, args, seed * 4 + channels.index(channel))
            rows.append(row)
            print_row(row)
            sys.stdout.flush()
    print("Ratios to push (poll: under uvicorn too; wsgi-poll: under gunicorn):")
    for waiting in sorted({r.waiting for r in rows}):
        by_channel = {r.channel: r for r in rows if r.waiting == waiting and not r.note and r.window}
        push = by_channel.get("push")
        for name, other in by_channel.items():
            if push is None or other is push:
                continue
            cpu = other.per_minute(other.server_cpu) / max(push.per_minute(push.server_cpu), 1e-9)
            p95 = percentile(other.to_login(), 0.95) / max(percentile(push.to_login(), 0.95), 1e-9)
            requests = percentile([float(n.requests) for n in other.newcomers], 0.5) / max(
                percentile([float(n.requests) for n in push.newcomers], 0.5), 1e-9
            )
            print(
                f"  N={waiting}, {name} / push: server CPU x{cpu:.1f}, requests per login x{requests:.1f}, "
                f"webhook→in p95 x{p95:.1f}"
            )
    print("Machine at the end:", machine())


if __name__ == "__main__":
    main()
