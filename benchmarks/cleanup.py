"""``callauth_cleanup`` on a million expired flows: its time next to one raw ``DELETE``, and
what it does to logins happening meanwhile.

The example site's own PostgreSQL database gets ``--rows`` expired flows (40 days old,
inserted by one ``INSERT … SELECT generate_series``) beside 10,000 live ones, then one of
these removes them: one raw ``DELETE … WHERE created_at < cutoff`` (the command's cutoff
with the default settings); ``manage.py callauth_cleanup`` as cron runs it (its own process,
so its Python work does not slow this one's clients); and, for comparison, raw batches of
5,000 that never bring the ids back to Python (``DELETE … WHERE id IN (SELECT id … LIMIT
5000)``, repeated). Rounds interleaved, each after a fresh fill and ``VACUUM ANALYZE``; the
command's start-up is timed apart, on a table with nothing to delete.

All along, two people log in over and over through the site under gunicorn (webhook mode,
the provider's webhook at once, polls every 50 ms), and each login's time is filed under
what the database was doing when it began. Bounded: ``--rounds`` x 3 deletions, then it
stops.

    .venv/bin/python benchmarks/cleanup.py [--rows 1000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # appended: PYTHONPATH may name another app
from benchmarks.clients import LoginClient
from benchmarks.logins import percentile
from benchmarks.stack import (
    EXAMPLE,
    Site,
    example_site,
    fake_provider_environment,
    free_port,
    libpq_url,
    machine,
)
from tests.fake_telefon_ip import FakeTelefonIp

LIVE_ROWS = 10_000
#: The command's cutoff with the default settings: 30 days, plus the TTL and the finishing window.
CUTOFF = timedelta(days=30, seconds=120 + 300)
BATCH = 5000
#: Every NOT NULL column without a default gets one of these; a new one stops the fill, saying so.
VALUES = {
    "id": "gen_random_uuid()",
    "phone": "'+79' || lpad(i::text, 9, '0')",
    "call_to": "'+79990000000'",
    "provider": "'telefon_ip'",
    "provider_id": "i::text",
    "webhook_secret_hash": "''",
    "purpose": "'login'",
    "status": "'expired'",
    "failure_reason": "''",
    "caller": "''",
    "next_url": "''",
    "created_at": "now() - %(age)s - i * interval '1 second'",
    "expires_at": "now() - %(age)s - i * interval '1 second' + interval '120 seconds'",
    "checks_made": "1",
    "finished_at": "now() - %(age)s",
}


def fill(conn: object, rows: int, age: timedelta) -> None:
    """``rows`` flows created ``age`` ago and before, in one statement."""
    required = [
        name
        for (name,) in conn.execute(  # type: ignore[attr-defined]
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'callauth_callauthflow' "
            "AND is_nullable = 'NO' AND column_default IS NULL"
        )
    ]
    unknown = set(required) - set(VALUES)
    if unknown:
        raise RuntimeError(f"the flow table has new required columns {sorted(unknown)}: give them values in VALUES")
    columns = [name for name in VALUES if name in required or name == "finished_at"]
    conn.execute(  # type: ignore[attr-defined]
        f"INSERT INTO callauth_callauthflow ({', '.join(columns)}) "
        f"SELECT {', '.join(VALUES[c] for c in columns)} FROM generate_series(1, %(rows)s) AS i",
        {"rows": rows, "age": age},
    )
    conn.execute("VACUUM ANALYZE callauth_callauthflow")  # type: ignore[attr-defined]


class LoginLoop:
    """People logging in again and again; each login's seconds filed under the phase it began in."""

    def __init__(self, site: Site, fake: FakeTelefonIp, people: int = 2) -> None:
        self.site, self.fake, self.people = site, fake, people
        self.phase = "setup"
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(n,)) for n in range(people)]

    def _loop(self, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            phone = f"+7960{n:02d}{i:05d}"
            phase, began = self.phase, time.monotonic()
            browser = LoginClient(self.site.url, phone)
            browser.open_login_page()
            started = browser.start(phone)
            self.fake.make_call(started.json()["call_to"], phone)
            while browser.status() == "pending" and time.monotonic() - began < 60:
                time.sleep(0.05)
            ok = browser.complete().status_code == 200
            self.seconds[phase if ok else phase + " (failed)"].append(time.monotonic() - began)

    def __enter__(self) -> LoginLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="logins measured with nothing else going on")
    args = parser.parse_args()
    print("Machine:", machine(), flush=True)
    import psycopg

    with FakeTelefonIp() as fake:
        port = free_port()
        env = fake_provider_environment(fake, webhook_base_url=f"http://127.0.0.1:{port}", CALLAUTH_LOG_LEVEL="ERROR")
        with example_site(env, port=port, reset=True) as site:
            url = libpq_url(env["DATABASE_URL"])

            def command() -> None:
                manage = [sys.executable, str(EXAMPLE / "manage.py"), "callauth_cleanup"]
                subprocess.run(manage, env=env, check=True, capture_output=True)

            def raw_delete() -> None:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("DELETE FROM callauth_callauthflow WHERE created_at < now() - %s", (CUTOFF,))

            def raw_batches() -> None:
                with psycopg.connect(url, autocommit=True) as conn:
                    while conn.execute(
                        "DELETE FROM callauth_callauthflow WHERE id IN (SELECT id FROM callauth_callauthflow "
                        "WHERE created_at < now() - %s ORDER BY created_at LIMIT %s)",
                        (CUTOFF, BATCH),
                    ).rowcount:
                        pass

            contenders = (
                ("raw DELETE", raw_delete),
                ("callauth_cleanup", command),
                (f"raw DELETE, {BATCH:,} a time", raw_batches),
            )
            timings: dict[str, list[float]] = defaultdict(list)
            with psycopg.connect(url, autocommit=True) as conn:
                fill(conn, LIVE_ROWS, timedelta(seconds=0))  # live flows, which must stay
                began = time.monotonic()
                command()
                start_up = time.monotonic() - began
                with LoginLoop(site, fake) as logins:
                    logins.phase = "idle"
                    time.sleep(args.idle_seconds)
                    for _ in range(args.rounds):
                        for name, delete in contenders:
                            logins.phase = "setup"
                            fill(conn, args.rows, timedelta(days=40))
                            logins.phase = name
                            began = time.monotonic()
                            delete()
                            timings[name].append(time.monotonic() - began)
                            logins.phase = "setup"
                left = conn.execute("SELECT count(*) FROM callauth_callauthflow").fetchone()[0]
    print(f"\n{args.rows:,} expired flows beside {LIVE_ROWS:,} live ones, {args.rounds} interleaved rounds")
    for name, seconds in timings.items():
        print(f"{name:<18} {statistics.median(seconds):7.2f} s (rounds: {', '.join(f'{s:.2f}' for s in seconds)})")
    for name in list(timings)[1:]:
        ratio = statistics.median(c / r for c, r in zip(timings[name], timings["raw DELETE"], strict=True))
        print(f"{name} / raw DELETE: {ratio:.2f}")
    print(f"callauth_cleanup with nothing to delete (its start-up): {start_up:.2f} s")
    print(f"flows left: {left:,} (the live ones and the logins')")
    print("\nLogin time (start to logged in, webhook at once, polls every 50 ms) by what ran meanwhile")
    print(f"{'phase':<28}{'logins':>7}{'p50 s':>8}{'p99 s':>8}{'max s':>8}")
    for phase, seconds in logins.seconds.items():
        if phase != "setup":
            print(f"{phase:<28}{len(seconds):>7}{percentile(seconds, 0.5):>8.3f}{percentile(seconds, 0.99):>8.3f}"
                  f"{max(seconds):>8.3f}")  # fmt: skip
    print("Machine at the end:", machine())


if __name__ == "__main__":
    main()
