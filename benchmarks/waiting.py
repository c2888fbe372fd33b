"""People waiting on the challenge page, as load: each polls ``status`` every few seconds, and never calls.

A thousand of them would take a thousand Python threads and most of a core in ``requests``;
here they are asyncio tasks with a bare HTTP/1.1 client (one connection per request, as a
load balancer spreads them) in a child process of their own, so the measured browsers and
the fake provider keep their interpreter. Bounded: they stop when the ``with`` block ends,
or after ``seconds`` at most.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Waited:
    """What the waiting browsers saw: answers by HTTP status, and their latency percentiles."""

    statuses: dict[int, int]
    p50: float
    p99: float


async def _poll(host: str, port: int, cookie: str, interval: float, stop_at: float, stop: Any, seen: list) -> None:
    request = (
        f"GET /callauth/status/ HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n"
        "Accept: application/json\r\nConnection: close\r\n\r\n"
    ).encode()
    await asyncio.sleep(random.uniform(0, interval))  # pages were opened at different moments
    while time.monotonic() < stop_at and not stop.is_set():
        began = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            answer = await asyncio.wait_for(reader.read(-1), timeout=30)
            writer.close()
            seen.append((int(answer[9:12] or 0), time.monotonic() - began))
        except (TimeoutError, OSError, ValueError):
            seen.append((0, time.monotonic() - began))
        await asyncio.sleep(interval)  # the page waits this long after each answer


async def _all(url: str, cookies: list[str], interval: float, seconds: float, stop: Any) -> list:
    parts = urlsplit(url)
    stop_at = time.monotonic() + seconds
    seen: list = []
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    await asyncio.gather(*(_poll(host, port, cookie, interval, stop_at, stop, seen) for cookie in cookies))
    return seen


def _child(url: str, cookies: list[str], interval: float, seconds: float, stop: Any, out: Connection) -> None:
    seen = asyncio.run(_all(url, cookies, interval, seconds, stop))
    latencies = sorted(latency for _, latency in seen) or [0.0]
    out.send(
        Waited(
            dict(Counter(status for status, _ in seen)),
            latencies[len(latencies) // 2],
            latencies[int(len(latencies) * 0.99)],
        )
    )


class WaitingBrowsers:
    """``with WaitingBrowsers(url, cookies, interval, seconds) as waiting: …``; then ``waiting.result``."""

    def __init__(self, url: str, cookies: list[str], interval: float, seconds: float) -> None:
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._stop = context.Event()
        self._process = context.Process(
            target=_child, args=(url, cookies, interval, seconds, self._stop, send), daemon=True
        )
        self._seconds = seconds
        self.result: Waited | None = None

    def __enter__(self) -> WaitingBrowsers:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._receive.poll(self._seconds + 60):
            self.result = self._receive.recv()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
