"""The example site as production runs it, on loopback: gunicorn or uvicorn workers, PostgreSQL, Redis.

Used by the scripts beside it and by the stack test (tests/test_stack.py). Nothing here is
a test; each script prints what it measured.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from tests.fake_telefon_ip import FakeTelefonIp

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/callauth_bench")
CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/2")
#: What gunicorn writes per request: worker pid, status, microseconds taken, method, path,
#: the client's tag. The tag (``X-Client`` header) lets a test see which workers served one login.
ACCESS_LOG_FORMAT = '%(p)s %(s)s %(D)s %(m)s %(U)s "%({x-client}i)s"'
#: Every benchmark browser comes from 127.0.0.1: the limits stay on (counted in Redis), but high.
HIGH_RATE_LIMITS = {"ip": "100000/m", "phone": "100/m", "global": "1000000/d"}
#: The tables a run leaves rows in; emptied before a run that counts rows.
SITE_TABLES = ("callauth_callauthflow", "callauth_callauthphone", "auth_user", "django_session")


def machine() -> str:
    """What the numbers were measured on: cores, CPU model, date, and how busy the machine was.

    The load average matters: on a shared machine other work takes cores from the server
    and the load generator alike. Ratios of interleaved rounds survive that; absolute numbers don't.
    """
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load}"


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant of it (from ``/proc/<pid>/task/*/children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:  # the task ended meanwhile
                pass
    return found


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def libpq_url(url: str) -> str:
    """``url`` as psycopg takes it: without the Django options (``?conn_max_age=…``) django-environ reads."""
    return url.split("?", 1)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_missing(database_url: str = DATABASE_URL, cache_url: str = CACHE_URL) -> str:
    """Why the stack cannot run here ("" when it can): PostgreSQL, Redis, gunicorn and uvicorn must answer."""
    for server in SERVERS:
        if importlib.util.find_spec(server) is None:
            return f"needs {server}: pip install -e '.[example]'"
    try:
        import psycopg
        import redis
    except ImportError:
        return "needs psycopg and redis: pip install -e '.[example]'"
    server = libpq_url(database_url).rsplit("/", 1)[0] + "/postgres"
    try:
        psycopg.connect(server, connect_timeout=2).close()
    except psycopg.Error as exc:
        return f"needs PostgreSQL at {server}: {str(exc).strip().splitlines()[0]}"
    try:
        redis.Redis.from_url(cache_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"needs Redis at {cache_url}: {exc}"
    return ""


def ensure_database(url: str = DATABASE_URL) -> None:
    """Create the benchmark's own PostgreSQL database if it is missing (never the test one)."""
    import psycopg

    server, name = libpq_url(url).rsplit("/", 1)
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def empty_tables(url: str = DATABASE_URL) -> None:
    """Forget every flow, phone, user and session of an earlier run (the schema stays)."""
    import psycopg

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(SITE_TABLES)} CASCADE")


def flow_rows(url: str = DATABASE_URL) -> list[tuple[str, str, str, str]]:
    """Every flow in the site's database: (id, phone, status, provider id)."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute("SELECT id, phone, status, provider_id FROM callauth_callauthflow").fetchall()
    return [(str(flow_id), phone, status, provider_id) for flow_id, phone, status, provider_id in rows]


def provider_requests_by_phone(fake: FakeTelefonIp, url: str = DATABASE_URL) -> dict[str, Counter[str]]:
    """phone -> how many starts and checks the provider got for it (checks found by the flow's provider id)."""
    phone_of_id = {provider_id: phone for _, phone, _, provider_id in flow_rows(url)}
    counts: dict[str, Counter[str]] = {}
    for r in fake.requests:
        if r.action == "reverse_auth_phone_check":
            phone = phone_of_id.get(r.path.rstrip("/").rsplit("/", 1)[1], "?")
            counts.setdefault(phone, Counter())["check"] += 1
        else:
            phone = "+7" + str(r.body.get("phone") or r.params.get("phone") or "??")[1:]
            counts.setdefault(phone, Counter())["start"] += 1
    return counts


def flush_cache(url: str = CACHE_URL) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def site_environment(**overrides: str) -> dict[str, str]:
    """The example site's environment: production-like, on the benchmark's database and cache.

    Nothing of the caller's own Django or CALLAUTH_* settings leaks in (pytest sets
    ``DJANGO_SETTINGS_MODULE`` to the test settings).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLAUTH_")}
    env.update(
        DJANGO_SETTINGS_MODULE="example.settings",
        DEBUG="false",
        SECRET_KEY="benchmark-only-secret-key-" + "x" * 30,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=DATABASE_URL,
        CACHE_URL=CACHE_URL,
        CALLAUTH_LOG_LEVEL="CRITICAL",  # the attacks make thousands of refusals; the table says what counts
    )
    env.update(overrides)
    return env


def fake_provider_environment(fake: FakeTelefonIp, *, webhook_base_url: str = "", **overrides: str) -> dict[str, str]:
    """``site_environment`` for logins through the telefon-ip fake: check mode, or webhook mode
    with ``webhook_base_url``; persistent database connections, as production should have
    them (docs/howto/production.rst); the rate limits high."""
    return site_environment(
        **{
            "DATABASE_URL": DATABASE_URL + "?conn_max_age=60",
            "CALLAUTH_PROVIDER": "telefon_ip",
            "CALLAUTH_TELEFON_IP_TOKEN": fake.token,
            "CALLAUTH_TELEFON_IP_URL": fake.base_url,
            "CALLAUTH_WEBHOOK_BASE_URL": webhook_base_url,
            "CALLAUTH_RATE_LIMITS": json.dumps(HIGH_RATE_LIMITS),
            **overrides,
        }
    )


def database_environment(url: str, server: str) -> dict[str, str]:
    """How ``server``'s workers connect to the database at ``url``, as docs/howto/production.rst advises.

    gunicorn's threads keep their connections (``conn_max_age``). Under uvicorn each request
    runs in a thread of its own, so kept connections would pile up until PostgreSQL refuses
    more: a pool per worker (``DATABASE_POOL``, example/settings.py) instead.
    """
    if server in ("uvicorn", "gunicorn-uvicorn"):
        return {"DATABASE_URL": url, "DATABASE_POOL": "true"}
    return {"DATABASE_URL": url + "?conn_max_age=60"}


def migrate(env: dict[str, str]) -> None:
    """Create the site's own database if needed and bring its schema up to date."""
    ensure_database(env["DATABASE_URL"])
    # Quiet unless it fails: its system-check warnings (plain-http webhooks on loopback) are expected.
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=EXAMPLE, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"migrate failed:\n{done.stdout}{done.stderr}")


@dataclass(frozen=True)
class Served:
    """One request as gunicorn logged it; ``client`` is the request's ``X-Client`` header."""

    worker: int
    status: int
    seconds: float  # from the request's arrival in the worker to the answer's end
    method: str
    path: str
    client: str


@dataclass(frozen=True)
class Site:
    """A running example site: its base URL, where the server writes what it served, its main process."""

    url: str
    access_log: Path | None
    pid: int = 0

    def cpu_seconds(self) -> float:
        """CPU seconds (user and system) the server's processes have used so far: the main one and its workers.

        From ``/proc/<pid>/stat`` of each live process of the tree; a worker that exited
        took its seconds with it, so measure differences over a window the workers live through.
        """
        return sum(process_cpu_seconds(pid) for pid in process_tree(self.pid))

    def served(self) -> list[Served]:
        """Every request served so far, in the order gunicorn logged them."""
        if self.access_log is None:
            return []
        served = []
        for line in self.access_log.read_text().splitlines():
            pid, status, micros, method, path, tag = line.split(" ", 5)
            tag = tag.strip('"')
            served.append(
                Served(int(pid.strip("<>")), int(status), int(micros) / 1e6, method, path, "" if tag == "-" else tag)
            )
        return served


#: The servers the example site runs under: gunicorn's threads (WSGI) or uvicorn's event loop (ASGI).
SERVERS = ("gunicorn", "uvicorn")


def server_command(
    server: str, port: int, workers: int, threads: int, access_log: Path | None, logs: Path | None
) -> list[str]:
    """The command line of ``server`` serving the example on ``port``, with ``workers`` processes.

    gunicorn gets ``threads`` threads a worker. uvicorn has no such knob: Django runs each
    request's synchronous views in a thread of the request's own (asgiref's
    ``ThreadSensitiveContext``), however many are in flight. Its access log comes from
    ``benchmarks/asgi_access_log.py`` (``BENCH_ACCESS_LOG``), in gunicorn's format.
    """
    if server == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", "example.wsgi", "--bind", f"127.0.0.1:{port}",
                   "--workers", str(workers), "--threads", str(threads), "--log-level", "warning"]  # fmt: skip
        if access_log is not None and logs is not None:
            command += ["--access-logfile", str(access_log), "--access-logformat", ACCESS_LOG_FORMAT,
                        "--error-logfile", str(logs / "error.log")]  # fmt: skip
        return command
    if server == "uvicorn":
        app = "benchmarks.asgi_access_log:application" if access_log is not None else "example.asgi:application"
        # --app-dir: the repository root, for benchmarks.asgi_access_log (example_project is the cwd).
        return [sys.executable, "-m", "uvicorn", app, "--app-dir", str(ROOT), "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log",
                "--backlog", "8192", "--timeout-keep-alive", "5"]  # fmt: skip
    if server == "gunicorn-uvicorn":  # gunicorn's processes, uvicorn's worker class (the uvicorn-worker package)
        app = "benchmarks.asgi_access_log:application" if access_log is not None else "example.asgi:application"
        return [sys.executable, "-m", "gunicorn", app, "--pythonpath", str(ROOT), "-k", "uvicorn_worker.UvicornWorker",
                "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning",
                "--backlog", "8192"]  # fmt: skip
    raise ValueError(f"unknown server {server!r}: one of {SERVERS} or gunicorn-uvicorn")


@contextmanager
def example_site(
    env: dict[str, str],
    workers: int = 4,
    threads: int = 4,
    *,
    port: int | None = None,
    logs: Path | None = None,
    reset: bool = False,
    server: str = "gunicorn",
) -> Iterator[Site]:
    """The example site under ``server`` (gunicorn or uvicorn) on a loopback port, until the block ends.

    The port is a free one unless given.

    With ``logs`` (a folder), the server writes an access log of every request
    (``ACCESS_LOG_FORMAT``) and its own error log there.

    The port can be chosen beforehand so that the site's own settings can name it
    (``CALLAUTH_WEBHOOK_BASE_URL``). With ``reset``, the site starts with no flows, users or
    sessions, and an empty cache: a run that counts rows counts only its own.
    """
    migrate(env)
    if reset:
        empty_tables(env["DATABASE_URL"])
        flush_cache(env["CACHE_URL"])
    port = port or free_port()
    access_log = None
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        access_log = logs / "access.log"
        access_log.write_text("")
    if server != "gunicorn":
        env = {**env, "BENCH_ACCESS_LOG": str(access_log) if access_log is not None else ""}
    command = server_command(server, port, workers, threads, access_log, logs)
    error_log = logs / "error.log" if logs is not None and server != "gunicorn" else None
    with server_process(command, env, f"http://127.0.0.1:{port}", startup=30, stop=30, log=error_log) as process:
        if access_log is not None:
            access_log.write_text("")  # the start-up probes are not part of the run (the server appends)
        yield Site(f"http://127.0.0.1:{port}", access_log, process.pid)


@contextmanager
def serving(
    command: list[str], env: dict[str, str], base: str, *, startup: float, stop: float, log: Path | None = None
) -> Iterator[str]:
    """``command`` run as a server until the block ends, once ``base``/login/ answers 200; yields ``base``.

    Gives up after ``startup`` seconds, or when the server exits, with its ``log`` if given;
    stopped with SIGTERM, then killed after ``stop`` seconds.
    """
    with server_process(command, env, base, startup=startup, stop=stop, log=log):
        yield base


@contextmanager
def server_process(
    command: list[str], env: dict[str, str], base: str, *, startup: float, stop: float, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """What ``serving`` does, yielding the server's process."""
    if log is not None:
        with open(log, "wb") as output:
            server = subprocess.Popen(command, cwd=EXAMPLE, env=env, stdout=output, stderr=output)
    else:
        server = subprocess.Popen(command, cwd=EXAMPLE, env=env)
    try:
        deadline = time.monotonic() + startup
        while True:
            try:
                if requests.get(base + "/login/", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                said = f":\n{log.read_text()}" if log is not None else ""
                raise RuntimeError(f"the example site did not start{said}")
            time.sleep(0.1)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=stop)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
