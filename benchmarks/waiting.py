"""People waiting on the challenge page, as load: each polls ``status`` every few seconds, or
holds the page's push stream (``events``) open, and never calls.

A thousand of them would take a thousand Python threads and most of a core in ``requests``;
here they are asyncio tasks with a bare HTTP/1.1 client (one connection per request, as a
load balancer spreads them) in a child process of their own, so the measured browsers and
the fake provider keep their interpreter. Bounded: they stop when the ``with`` block ends,
or after ``seconds`` at most.

A listener does what the page's script does with an ``EventSource``: one GET of the events
URL (``Accept: text/event-stream``), read until the stream ends; reconnect after the
stream's ``retry:`` if it ends while the flow is pending; fall back to polling when the
site answers anything but 200 (no push under WSGI: 404 ``push_unavailable``).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlencode, urlsplit

#: How long a waiting browser may take for its first answer before it counts as failed.
ANSWER_TIMEOUT = 30.0
#: Browsers that start their own flow do so this many at a time: a crowd arriving, not one instant.
START_CONCURRENCY = 50


@dataclass(frozen=True)
class Waited:
    """What the waiting browsers saw.

    ``statuses``: HTTP statuses of every poll, and of every events request (0: no answer);
    ``p50``/``p99``: seconds until a poll's answer, or until a stream's first event.
    ``events`` counts the ``event: status`` messages streams delivered, ``keepalives`` their
    comment lines, ``reconnects`` the streams opened again after one ended while pending,
    ``fallbacks`` the listeners that polled instead.
    """

    statuses: dict[int, int]
    p50: float
    p99: float
    events: int = 0
    keepalives: int = 0
    reconnects: int = 0
    unanswered: int = 0  # of the reconnects: after a stream that failed or timed out, not one that ended
    fallbacks: int = 0
    requests: int = 0
    start_failed: int = 0  # browsers given a phone whose start was refused (they did not wait)


@dataclass
class _Seen:
    answers: list[tuple[int, float]] = field(default_factory=list)  # (HTTP status, seconds)
    counts: Counter[str] = field(default_factory=Counter)


class _Browser:
    """One waiting page: the site's host and port, its session cookie, and what it counts."""

    def __init__(self, host: str, port: int, cookie: str, stop_at: float, stop: Any, shared: Any, seen: _Seen) -> None:
        self.host, self.port, self.cookie = host, port, cookie
        self.stop_at, self.stop, self.shared, self.seen = stop_at, stop, shared, seen
        self._counted = False

    def going(self) -> bool:
        return time.monotonic() < self.stop_at and not self.stop.is_set()

    def answered(self) -> None:
        """The first answer of this page: it counts as waiting from now on."""
        if not self._counted:
            self._counted = True
            self.shared[0] += 1  # one writer (this process's loop); the parent only reads

    def got(self, status: int, seconds: float) -> None:
        self.seen.answers.append((status, seconds))
        self.shared[1] += 1

    async def start(self, phone: str) -> bool:
        """What the login page does before the challenge page waits: its CSRF cookie, then
        ``start`` with ``phone``; this page's cookie is then the new session's. False if refused."""
        login = await self._exchange(self.request("/login/", "text/html"))
        csrf = _cookie(login, "csrftoken")
        body = urlencode({"phone": phone})
        answer = await self._exchange(
            (
                f"POST /callauth/start/ HTTP/1.1\r\nHost: {self.host}\r\nCookie: csrftoken={csrf}\r\n"
                f"X-CSRFToken: {csrf}\r\nAccept: application/json\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
            ).encode()
        )
        session = _cookie(answer, "sessionid")
        if answer[9:12] != b"201" or not session:
            return False
        self.cookie = f"sessionid={session}"
        return True

    async def _exchange(self, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(request)
            return await asyncio.wait_for(reader.read(-1), timeout=ANSWER_TIMEOUT)
        finally:
            writer.close()

    def request(self, path: str, accept: str) -> bytes:
        return (
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nCookie: {self.cookie}\r\n"
            f"Accept: {accept}\r\nConnection: close\r\n\r\n"
        ).encode()

    async def poll(self, path: str, interval: float) -> None:
        request = self.request(path, "application/json")
        while self.going():
            began = time.monotonic()
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(request)
                answer = await asyncio.wait_for(reader.read(-1), timeout=ANSWER_TIMEOUT)
                writer.close()
                # 200, or 429 slow_down from a site that thinks this page polls too fast: both are replies.
                self.got(int(answer[9:12] or 0), time.monotonic() - began)
                self.answered()
            except (TimeoutError, OSError, ValueError):
                self.got(0, time.monotonic() - began)
            await asyncio.sleep(interval)  # the page waits this long after each answer

    async def listen(self, path: str, poll_path: str, interval: float) -> None:
        retry = 3.0
        while self.going():
            began = time.monotonic()
            try:
                status, retry, final = await asyncio.wait_for(self._stream(path, began, retry), self._left())
            except (TimeoutError, OSError, ValueError):
                status, final = 0, False
            if status == 0 and not self.going():
                return  # the window closed while the stream was open: that is the plan, not a failure
            if status != 200:  # a 200's latency is its first event's, counted by _stream
                self.got(status, time.monotonic() - began)
            if status not in (0, 200):
                self.seen.counts["fallbacks"] += 1
                await self.poll(poll_path, interval)
                return
            if final:
                return  # the page closes its EventSource on a final status
            self.seen.counts["reconnects"] += 1
            if status == 0:
                self.seen.counts["unanswered"] += 1
            await asyncio.sleep(retry)

    def _left(self) -> float:
        return max(0.1, self.stop_at - time.monotonic())

    async def _stream(self, path: str, began: float, retry: float) -> tuple[int, float, bool]:
        """One events request, read to its end: (HTTP status, the retry it asked for, whether it ended final)."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(self.request(path, "text/event-stream"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=ANSWER_TIMEOUT)
            status = int(head[9:12] or 0)
            if status != 200:
                return status, retry, False
            self.got(200, 0.0)  # its latency is the first event's, below
            mine = len(self.seen.answers) - 1  # other pages append meanwhile
            first, event = True, ""
            # Chunked transfer: the chunk-size lines are neither fields nor comments, and are skipped.
            while self.going():
                line = (await reader.readline()).decode("utf-8", "replace").rstrip("\r\n")
                if not line and reader.at_eof():
                    return 200, retry, False
                if line.startswith(":"):
                    self.seen.counts["keepalives"] += 1
                elif line.startswith("retry:"):
                    retry = int(line[6:].strip() or 3000) / 1000
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "status":
                    self.seen.counts["events"] += 1
                    if first:
                        first = False
                        self.seen.answers[mine] = (200, time.monotonic() - began)
                        self.answered()
                    if json.loads(line[5:]).get("status") != "pending":
                        return 200, retry, True
            return 200, retry, False
        finally:
            writer.close()


def _cookie(answer: bytes, name: str) -> str:
    """The value of cookie ``name`` that an HTTP answer sets ("" if none)."""
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n"):
        if line.lower().startswith("set-cookie:") and line.split(":", 1)[1].strip().startswith(name + "="):
            return line.split(":", 1)[1].strip().split(";", 1)[0].split("=", 1)[1]
    return ""


async def _all(
    url: str,
    cookies: list[str],
    phones: list[str],
    interval: float,
    seconds: float,
    stop: Any,
    shared: Any,
    events_path: str,
) -> _Seen:
    parts = urlsplit(url)
    stop_at = time.monotonic() + seconds
    seen = _Seen()
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    starting = asyncio.Semaphore(START_CONCURRENCY)

    async def one(cookie: str, phone: str) -> None:
        browser = _Browser(host, port, cookie, stop_at, stop, shared, seen)
        if phone:
            async with starting:
                try:
                    started = await browser.start(phone)
                except (TimeoutError, OSError, ValueError):
                    started = False
            if not started:
                seen.counts["start_failed"] += 1
                return
        await asyncio.sleep(random.uniform(0, interval))  # pages were opened at different moments
        if events_path:
            await browser.listen(events_path, "/callauth/status/", interval)
        else:
            await browser.poll("/callauth/status/", interval)

    pages = [(cookie, "") for cookie in cookies] + [("", phone) for phone in phones]
    tasks = [asyncio.create_task(one(cookie, phone)) for cookie, phone in pages]
    # An open stream waits for its next line up to a heartbeat: the end of the block ends it sooner.
    while not all(task.done() for task in tasks) and time.monotonic() < stop_at and not stop.is_set():
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return seen


def _child(
    url: str,
    cookies: list[str],
    phones: list[str],
    interval: float,
    seconds: float,
    stop: Any,
    shared: Any,
    events_path: str,
    out: Connection,
) -> None:
    seen = asyncio.run(_all(url, cookies, phones, interval, seconds, stop, shared, events_path))
    latencies = sorted(latency for _, latency in seen.answers) or [0.0]
    out.send(
        Waited(
            dict(Counter(status for status, _ in seen.answers)),
            latencies[len(latencies) // 2],
            latencies[int(len(latencies) * 0.99)],
            events=seen.counts["events"],
            keepalives=seen.counts["keepalives"],
            reconnects=seen.counts["reconnects"],
            unanswered=seen.counts["unanswered"],
            fallbacks=seen.counts["fallbacks"],
            requests=len(seen.answers),
            start_failed=seen.counts["start_failed"],
        )
    )


class WaitingBrowsers:
    """``with WaitingBrowsers(url, cookies, interval, seconds) as waiting: …``; then ``waiting.result``.

    With ``events_path`` each browser listens to that push stream instead of polling. Each
    of ``phones`` is one more browser that first starts a flow for it (the login page's
    request, ``START_CONCURRENCY`` at a time), then waits at once, as a page does: its flow
    is fresh in the cache when its stream opens.
    ``waiting.ready`` counts the browsers that have had their first answer (a poll's, or a
    stream's first event), ``waiting.answers`` the requests answered so far; ``waiting.pid``
    is the child process, whose CPU the load costs.
    """

    def __init__(
        self,
        url: str,
        cookies: list[str],
        interval: float,
        seconds: float,
        events_path: str = "",
        phones: list[str] | None = None,
    ) -> None:
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._stop = context.Event()
        # [browsers that had a first answer, answers so far]: read by the parent while they wait.
        self._shared = context.Array("q", 2, lock=False)
        self._process = context.Process(
            target=_child,
            args=(url, cookies, phones or [], interval, seconds, self._stop, self._shared, events_path, send),
            daemon=True,
        )
        self._seconds = seconds
        self.result: Waited | None = None

    @property
    def ready(self) -> int:
        return int(self._shared[0])

    @property
    def answers(self) -> int:
        """Polls answered and streams opened so far (a failed request counts too)."""
        return int(self._shared[1])

    @property
    def pid(self) -> int:
        return self._process.pid or os.getpid()

    def wait_ready(self, count: int, timeout: float) -> int:
        """Wait until ``count`` browsers have had an answer, or ``timeout`` seconds; how many have."""
        deadline = time.monotonic() + timeout
        while self.ready < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.ready

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
