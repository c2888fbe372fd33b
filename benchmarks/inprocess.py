"""The example site inside this process, for measurements that a server in between would blur:
CPU time per request with Django's test ``Client``, and the statements each request sends.

It runs on the same database and cache as the benchmark's gunicorn stack (its env), so
both kinds of measurement see the same data.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.stack import EXAMPLE, migrate

#: What to do before a timed request (untimed), and the request.
Contender = tuple[Callable[[int], object] | None, Callable[[int], object]]
#: Transaction control, which Django logs as statements too: not what "a query" means here.
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process as the example site with ``env`` (once per process)."""
    migrate(env)
    os.environ.update(env, ALLOWED_HOSTS="testserver," + env.get("ALLOWED_HOSTS", ""))
    sys.path[:0] = [str(EXAMPLE)]
    import django

    django.setup()


def queries_of(request: Callable[[], object]) -> list[str]:
    """The SQL ``request()`` sends, BEGIN/COMMIT and savepoints left out."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        request()
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(TRANSACTION_CONTROL)]


@dataclass
class Rounds:
    """Interleaved timing rounds: every contender once per round, in the same order (A, B, C, A, B, C…).

    Interleaving spreads whatever else the machine does over all contenders alike; the
    medians of per-round ratios are what is reported.
    """

    cpu: dict[str, list[float]] = field(default_factory=dict)  # seconds of this process's CPU per request
    wall: dict[str, list[float]] = field(default_factory=dict)  # seconds of wall time per request

    def run(self, contenders: dict[str, Contender], rounds: int, requests: int) -> Rounds:
        """``contenders[name] = (prepare, send)``: ``send(i)`` sends request ``i``, timed, after
        ``prepare(i)`` (if any), untimed; each round times ``requests`` of each contender."""
        for _ in range(rounds):
            for name, (prepare, send) in contenders.items():
                cpu = wall = 0.0
                for i in range(requests):
                    if prepare is not None:
                        prepare(i)
                    cpu_start, wall_start = time.process_time(), time.perf_counter()
                    send(i)
                    cpu += time.process_time() - cpu_start
                    wall += time.perf_counter() - wall_start
                self.cpu.setdefault(name, []).append(cpu / requests)
                self.wall.setdefault(name, []).append(wall / requests)
        return self

    def ratio(self, name: str, baseline: str, clock: str = "cpu") -> float:
        """Median over rounds of (requests per second of ``name``) / (of ``baseline``)."""
        times = getattr(self, clock)
        return statistics.median(b / a for a, b in zip(times[name], times[baseline], strict=True))

    def median(self, name: str, clock: str = "cpu") -> float:
        return statistics.median(getattr(self, clock)[name])
