"""The admin's numbers page (stats.py) on a million flows: its queries' time on the ``created_at``
index, with a wide index of every column it reads added, and both ways of computing the
percentiles.

Its own PostgreSQL database (``--database``, created when missing, migrated) gets ``--rows``
flows spread over the last 30 days, inserted by one ``INSERT … SELECT generate_series``
(two providers; 70 % used, 15 % expired, the rest failed by three reasons; a few
failovers), then ``VACUUM ANALYZE``. Measured, each ``--repeat`` times (median shown):

- ``stats.dashboard(days)`` for 14 and 90 days on the migrated schema (the ``created_at``
  index), then with a wide index (every column the counts read, in its key: what would let
  PostgreSQL answer from the index alone) created, then dropped again;
- the percentiles alone, by ``percentile_cont`` in the database and by fetching the window's
  confirmed flows into Python (the SQLite way), on the same rows;
- the whole admin page, rendered by Django's test client.

``--sqlite`` also fills a SQLite file with the same number of rows and times the page's
numbers there. Bounded: a fixed number of runs, then the database is left for inspection.

    .venv/bin/python benchmarks/dashboard.py [--rows 1000000] [--repeat 5] [--sqlite]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "example_project")]

#: Every column of the flow table; a new one without a default stops the fill, saying so.
#: ``r`` is a random number per row, drawn once, that decides its outcome.
VALUES = {
    "id": "gen_random_uuid()",
    "phone": "'+79' || lpad((i % 1000000)::text, 9, '0')",
    "call_to": "'+79990000000'",
    "provider": "CASE WHEN i % 5 = 0 THEN 'sms_ru' ELSE 'telefon_ip' END",
    "first_provider": "CASE WHEN i % 100 = 0 THEN 'telefon_ip' WHEN i % 5 = 0 THEN 'sms_ru' ELSE 'telefon_ip' END",
    "provider_id": "CASE WHEN r < 0.96 THEN i::text ELSE '' END",
    "webhook_secret_hash": "''",
    "purpose": "'login'",
    "status": "CASE WHEN r < 0.70 THEN 'used' WHEN r < 0.85 THEN 'expired' WHEN r < 0.999 THEN 'failed' "
    "ELSE 'pending' END",
    "failure_reason": "CASE WHEN r < 0.85 OR r >= 0.999 THEN '' WHEN r < 0.92 THEN 'phone_mismatch' "
    "WHEN r < 0.96 THEN 'no_account' ELSE 'provider_error' END",
    "caller": "''",
    "next_url": "''",
    "created_at": "now() - (i::float / %(rows)s) * interval '30 days'",
    "expires_at": "now() - (i::float / %(rows)s) * interval '30 days' + interval '120 seconds'",
    "checks_made": "1",
    "called_checks": "0",
    "confirmed_at": "CASE WHEN r < 0.70 OR (r >= 0.92 AND r < 0.96) THEN now() - (i::float / %(rows)s) "
    "* interval '30 days' + (5 + 40 * r2) * interval '1 second' END",
    "finished_at": "now() - (i::float / %(rows)s) * interval '30 days' + interval '60 seconds'",
}


def setup(database_url: str) -> None:
    os.environ["CALLAUTH_TEST_DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()


def fill_postgres(rows: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'callauth_callauthflow' "
            "AND is_nullable = 'NO' AND column_default IS NULL"
        )
        unknown = {name for (name,) in cursor.fetchall()} - set(VALUES)
        if unknown:
            raise RuntimeError(f"the flow table has new required columns {sorted(unknown)}: give them VALUES")
        cursor.execute("TRUNCATE callauth_callauthflow")
        cursor.execute(
            f"INSERT INTO callauth_callauthflow ({', '.join(VALUES)}) "
            f"SELECT {', '.join(value.replace(' % ', ' %% ') for value in VALUES.values())} FROM "
            "(SELECT i, random() AS r, random() AS r2 FROM generate_series(1, %(rows)s) AS i) AS s",
            {"rows": rows},
        )
        cursor.execute("VACUUM ANALYZE callauth_callauthflow")


def fill_sqlite(rows: int) -> None:
    """The same rows through SQLite's own SQL (a recursive CTE stands for generate_series)."""
    from django.db import connection

    sql = {
        name: value.replace("gen_random_uuid()", "lower(hex(randomblob(16)))")
        .replace("lpad((i % 1000000)::text, 9, '0')", "substr('000000000' || (i % 1000000), -9)")
        .replace("::text", "")
        .replace("(i::float / %(rows)s) * interval '30 days'", "(i * 2592.0 / %(rows)s) * 1000")
        for name, value in VALUES.items()
    }
    seconds = f"(i * 2592000.0 / {rows})"
    sql["created_at"] = f"strftime('%Y-%m-%d %H:%M:%f', 'now', (-{seconds}) || ' seconds')"
    sql["expires_at"] = f"strftime('%Y-%m-%d %H:%M:%f', 'now', (120 - {seconds}) || ' seconds')"
    sql["finished_at"] = f"strftime('%Y-%m-%d %H:%M:%f', 'now', (60 - {seconds}) || ' seconds')"
    sql["confirmed_at"] = (
        "CASE WHEN r < 0.70 OR (r >= 0.92 AND r < 0.96) THEN strftime('%Y-%m-%d %H:%M:%f', 'now', "
        f"(5 + 40 * r2 - {seconds}) || ' seconds') END"
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM callauth_callauthflow")
        cursor.execute(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
            f"INSERT INTO callauth_callauthflow ({', '.join(sql)}) "
            f"SELECT {', '.join(v.replace('%(rows)s', str(rows)) for v in sql.values())} FROM "
            "(SELECT i, (random() / 18446744073709551616.0 + 0.5) AS r, "
            "(random() / 18446744073709551616.0 + 0.5) AS r2 FROM n)"
        )
        cursor.execute("ANALYZE")


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median seconds of ``repeat`` runs, and the last run's result."""
    seconds, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds), result


def page_seconds(repeat: int) -> float:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench-admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)

    def get() -> None:
        assert client.get("/admin/callauth/callauthflow/dashboard/").status_code == 200

    return timed(get, repeat)[0]


def report(label: str, repeat: int) -> None:
    from django_callauth import stats

    for days in (14, 90):
        seconds, board = timed(lambda days=days: stats.dashboard(days), repeat)
        counted = sum(entry.total.starts for entry in board.providers)
        print(f"{label:<34} {days:>3} days {seconds * 1000:9.1f} ms  ({counted:,} flows counted)", flush=True)


def percentiles(repeat: int) -> None:
    """Both ways on the same database: percentile_cont, and the confirmed flows fetched into Python."""
    from django_callauth import stats
    from django_callauth.models import CallAuthFlow

    since = stats.dashboard(14).since
    flows = CallAuthFlow.objects.filter(created_at__date__gte=since).order_by()
    in_sql, _ = timed(lambda: stats._add_percentiles(flows, defaultdict(stats.Counts)), repeat)
    with mock.patch.object(stats, "connection", SimpleNamespace(vendor="sqlite")):
        in_python, _ = timed(lambda: stats._add_percentiles(flows, defaultdict(stats.Counts)), repeat)
    confirmed = flows.filter(confirmed_at__isnull=False).count()
    print(f"percentiles, 14 days ({confirmed:,} confirmed): percentile_cont {in_sql * 1000:.1f} ms, "
          f"fetched into Python {in_python * 1000:.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/callauth_dash")
    parser.add_argument("--sqlite", action="store_true", help="also on a SQLite file of as many rows")
    args = parser.parse_args()
    if args.sqlite:
        run_sqlite(args)
        return
    from benchmarks.stack import ensure_database, machine

    print("Machine:", machine(), flush=True)
    ensure_database(args.database)
    setup(args.database)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    began = time.perf_counter()
    fill_postgres(args.rows)
    print(f"{args.rows:,} flows over 30 days inserted in {time.perf_counter() - began:.1f} s", flush=True)
    report("PostgreSQL, created_at index", args.repeat)
    percentiles(args.repeat)
    print(f"the admin page                          {page_seconds(args.repeat) * 1000:9.1f} ms", flush=True)
    with connection.cursor() as cursor:
        cursor.execute(WIDE_INDEX)
        cursor.execute("VACUUM ANALYZE callauth_callauthflow")
    report("PostgreSQL, with the wide index", args.repeat)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX bench_flow_stats")
        cursor.execute("ANALYZE callauth_callauthflow")
    report("PostgreSQL, created_at index again", args.repeat)


#: Every column the counting query reads, in the key: the index an index-only scan would need.
WIDE_INDEX = (
    "CREATE INDEX bench_flow_stats ON callauth_callauthflow (created_at, provider, status, failure_reason, "
    "first_provider, provider_id, confirmed_at, expires_at)"
)


def run_sqlite(args: argparse.Namespace) -> None:
    import tempfile

    from benchmarks.stack import machine

    print("Machine:", machine(), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        setup(f"sqlite:///{folder}/dashboard.sqlite3")
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        began = time.perf_counter()
        fill_sqlite(args.rows)
        print(f"{args.rows:,} flows over 30 days inserted in {time.perf_counter() - began:.1f} s", flush=True)
        report("SQLite, created_at index", args.repeat)
        print(f"the admin page (SQLite)                 {page_seconds(args.repeat) * 1000:9.1f} ms", flush=True)


if __name__ == "__main__":
    main()
