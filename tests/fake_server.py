"""A provider API played on loopback by the tests themselves: the part every fake shares.

The real providers cannot be reached from our machines, and mocks of ``requests`` skip the
parts that break in production: sockets, timeouts, slow bodies, urllib3's logging, the
provider calling the site back. So each fake is a real HTTP server. This base records every
request, answers injected failures (``fail_next``), and leaves the API itself to a subclass
(``_action`` names a request, ``_answer`` answers it).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    """One request the fake received: what a test asserts the client sent."""

    method: str
    action: str
    params: dict[str, str]
    body: dict[str, Any]
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class _ListeningServer(ThreadingHTTPServer):
    # socketserver's default backlog is 5: a site under uvicorn (a thread per request) opens
    # more connections at once than that, and the rest wait a SYN retransmission (1 s, then
    # 3 s) and time out as a provider that does not answer. A real provider listens wider.
    request_queue_size = 256


@dataclass
class FakeServer:
    """The server, the record of requests and the failure queue; options may change between requests."""

    lifetime: float = 120.0
    #: Sent raw after the good headers of every answer. A line with no colon is what a broken
    #: server or proxy sends: http.client keeps the headers before it, urllib3 logs a warning.
    broken_header_line: str | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._failures: list[tuple[int, bytes, float]] = []  # status, body, delay
        self._server: _ListeningServer | None = None

    # -- what subclasses provide ---------------------------------------------------------

    #: The path the API lives under, with a trailing slash.
    api_path = "/"

    def _action(self, path: str) -> str:
        """What a test calls the request to ``path`` (recorded)."""
        return path.removeprefix(self.api_path)

    def _answer(self, asked: Recorded) -> tuple[int, Any]:
        """The provider's (status, JSON payload) for one request."""
        raise NotImplementedError

    # -- the server ------------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def origin(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.origin + self.api_path

    def start(self) -> Any:
        self._server = _ListeningServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll keeps stop() fast: shutdown() waits for the next poll.
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, status: int, body: bytes | str, delay: float = 0) -> None:
        """Answer the next request with this; ``delay`` is slept before each body byte (a trickle)."""
        with self._lock:
            self._failures.append((status, body.encode() if isinstance(body, str) else body, delay))

    def _expires_at(self) -> float:
        return time.monotonic() + self.lifetime


def call_site(url: str, method: str = "GET", form: list[tuple[str, str]] | None = None) -> int:
    """The provider's request to the site (a webhook or callback); the HTTP status it got."""
    data = None
    if method == "POST":
        data = urllib.parse.urlencode(form or []).encode()
    request = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _handler_for(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test output is no place for an access log

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            params = dict(parse_qsl(url.query))
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = _decode_body(raw, self.headers.get("Content-Type", ""))
            recorded = Recorded(method, fake._action(url.path), params, body, url.path, dict(self.headers.items()))
            with fake._lock:
                fake._requests.append(recorded)
                failure = fake._failures.pop(0) if fake._failures else None
            if failure is not None:
                return self._send(*failure)
            status, payload = fake._answer(recorded)
            self._send(status, json.dumps(payload, ensure_ascii=False).encode())

        def _send(self, status: int, body: bytes, delay: float = 0) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if fake.broken_header_line is not None:
                # send_header() always writes "name: value"; the broken line goes in as is.
                self._headers_buffer.append(fake.broken_header_line.encode("latin-1") + b"\r\n")
            self.end_headers()
            try:
                # With a delay, one byte at a time: each read returns quickly, so only the
                # client's total deadline (not its read timeout) can stop the trickle.
                for byte in [body[i : i + 1] for i in range(len(body))] if delay else [body]:
                    time.sleep(delay)
                    self.wfile.write(byte)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on a slow body: exactly what the test wanted

    return Handler


def _decode_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """A POST body as a dict: JSON or a form, whichever the client sent."""
    if not content_type.startswith("application/json"):
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    try:
        decoded = json.loads(raw)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}
