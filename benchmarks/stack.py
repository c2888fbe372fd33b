"""The example site as production runs it, on loopback: gunicorn workers, PostgreSQL, Redis.

Used by the scripts beside it. Nothing here is a test; each script prints what it measured.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/callauth_bench")
CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_database(url: str = DATABASE_URL) -> None:
    """Create the benchmark's own PostgreSQL database if it is missing (never the test one)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def flush_cache(url: str = CACHE_URL) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def site_environment(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLAUTH_")}
    env.update(
        DEBUG="false",
        SECRET_KEY="benchmark-only-secret-key-" + "x" * 30,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=DATABASE_URL,
        CACHE_URL=CACHE_URL,
        CALLAUTH_LOG_LEVEL="CRITICAL",  # the attacks make thousands of refusals; the table says what counts
    )
    env.update(overrides)
    return env


@contextmanager
def example_site(env: dict[str, str], workers: int = 4, threads: int = 4) -> Iterator[str]:
    """The example site under gunicorn on a free loopback port; yields its base URL."""
    ensure_database()
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=EXAMPLE, env=env, check=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "example.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--log-level", "warning"],
        cwd=EXAMPLE,
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/login/", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the example site did not start")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
