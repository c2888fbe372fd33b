"""A fake of the telefon-ip "Back Calls" API, served on loopback by the tests themselves.

The real provider cannot be reached from our machines, and mocks of ``requests`` skip the
parts that break in production: sockets, timeouts, slow bodies, urllib3's logging, the
provider calling our webhook. So this is a real HTTP server, answering exactly the shapes
docs/providers/telefon-ip.rst shows, with switches for the shapes it says are unknown.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

NOT_FOUND = {"success": False, "error": "id record not found", "data": {}}
PENDING_SHAPES: dict[str, tuple[int, Any]] = {
    "success_false": (200, {"success": False, "error": "call not received", "data": {}}),
    "phone_empty": (200, {"success": True, "error": "", "data": {"phone": "", "id": None}}),
    "phone_missing": (200, {"success": True, "error": "", "data": {"id": None}}),
    "phone_null": (200, {"success": True, "error": "", "data": {"phone": None, "id": None}}),
    "status_pending": (200, {"success": True, "error": "", "data": {"status": "pending", "id": None}}),
    "data_list": (200, {"success": True, "error": "", "data": []}),
    "data_null": (200, {"success": True, "error": "", "data": None}),
    "not_found_400": (400, NOT_FOUND),
}


@dataclass
class Recorded:
    """One request the fake received: what a test asserts the client sent."""

    method: str
    action: str
    params: dict[str, str]
    body: dict[str, Any]
    path: str


@dataclass
class Authorisation:
    id: int | str
    auth_phone: str  # "7XXXXXXXXXX", as the provider sends it
    expires_at: float
    webhook: str | None = None
    caller: str | None = None  # "89…"/"79…" once called


@dataclass
class FakeTelefonIp:
    """The fake provider; options may be changed between requests."""

    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    id_as_string: bool = False
    success_as: Any = True  # what "success" looks like in good answers: True, "True", "true"
    pending_shape: str = "success_false"
    caller_format: str = "8"  # the caller's phone in answers: "89…" (the doc) or "79…"
    webhook_method: str = "GET"
    lifetime: float = 120.0
    #: Sent raw after the good headers of every answer. A line with no colon is what a broken
    #: server or proxy sends: http.client keeps the headers before it, urllib3 logs a warning.
    broken_header_line: str | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._auths: dict[str, Authorisation] = {}
        self._failures: list[tuple[int, bytes, float]] = []  # status, body, delay
        self._next_id = random.randint(100_000, 900_000)
        self._server: ThreadingHTTPServer | None = None

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v1/authcalls/"

    def start(self) -> FakeTelefonIp:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll keeps stop() fast: shutdown() waits for the next poll.
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeTelefonIp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, status: int, body: bytes | str, delay: float = 0) -> None:
        """Answer the next request with this; ``delay`` is slept before each body byte (a trickle)."""
        with self._lock:
            self._failures.append((status, body.encode() if isinstance(body, str) else body, delay))

    def make_call(self, call_to: str, caller: str, *, lose_webhook: bool = False) -> int | None:
        """Play a call from ``caller`` to ``call_to`` (both E.164); the webhook's HTTP status, if any.

        ``lose_webhook``: the call is recorded, but the webhook never reaches the site.
        """
        with self._lock:
            auth = next((a for a in self._auths.values() if a.auth_phone == call_to[1:]), None)
            if auth is None or time.monotonic() > auth.expires_at:
                return None
            auth.caller = self.caller_format + caller[2:]
        if auth.webhook is None or lose_webhook:
            return None
        query = urlencode({"success": "True", "phone": auth.caller, "id": auth.id})
        url = auth.webhook + ("&" if "?" in auth.webhook else "?") + query
        request = urllib.request.Request(
            url, method=self.webhook_method, data=b"" if self.webhook_method == "POST" else None
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def _answer(self, action: str, rest: str, params: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        """The provider's answer to one request that carried the right token."""
        if action == "reverse_auth_phone_get":
            return self._start(params.get("phone"), None)
        if action == "reverse_auth_phone_post":
            return self._start(body.get("phone"), body.get("webhook") or None)
        if action == "reverse_auth_phone_check":
            return self._check(rest.strip("/"))
        return 404, {"success": False, "error": "unknown action", "data": {}}

    def _start(self, phone: object, webhook: str | None) -> tuple[int, Any]:
        if not (isinstance(phone, str) and re.fullmatch(r"89[0-9]{9}", phone)):
            return 400, {"success": False, "error": "phone is invalid", "data": {}}
        with self._lock:
            self._next_id += 1
            auth_id = str(self._next_id) if self.id_as_string else self._next_id
            auth = Authorisation(auth_id, self._unused_phone(), time.monotonic() + self.lifetime, webhook)
            self._auths[str(auth_id)] = auth
            other_number = "8" + self._unused_phone()[1:]  # the doc's link dials another number
        data = {
            "auth_phone": auth.auth_phone,
            "id": auth_id,
            "url_image": f"{self.base_url}get_qr_image/{auth_id}/",
            "url_link": f"<a href='tel:{other_number}'>Позвони для авторизации</a>",
        }
        return 200, {"success": self.success_as, "error": "", "data": data}

    def _check(self, auth_id: str) -> tuple[int, Any]:
        with self._lock:
            auth = self._auths.get(auth_id)
        if auth is None or time.monotonic() > auth.expires_at:
            return 400, NOT_FOUND
        if auth.caller is not None:
            return 200, {
                "success": self.success_as,
                "error": "",
                "data": {"phone": auth.caller, "id": auth.id},
            }
        status, shaped = PENDING_SHAPES[self.pending_shape]
        shaped = json.loads(json.dumps(shaped))  # a copy, to fill in this id
        if isinstance(shaped["data"], dict) and "id" in shaped["data"]:
            shaped["data"]["id"] = auth.id
        return status, shaped

    def _unused_phone(self) -> str:
        taken = {a.auth_phone for a in self._auths.values()}
        while (phone := f"79{random.randint(0, 999_999_999):09d}") in taken:
            pass
        return phone


def _handler_for(fake: FakeTelefonIp) -> type[BaseHTTPRequestHandler]:
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
            prefix = f"/api/v1/authcalls/{fake.token}/"
            action, _, rest = url.path.removeprefix(prefix).partition("/")
            with fake._lock:
                fake._requests.append(Recorded(method, action, params, body, url.path))
                failure = fake._failures.pop(0) if fake._failures else None
            if failure is not None:
                return self._send(*failure)
            if not url.path.startswith(prefix):
                return self._send(401, b'{"success": false, "error": "token is invalid", "data": {}}')
            status, payload = fake._answer(action, rest, params, body)
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
    """A POST body as a dict: the provider's encoding (JSON or form) is unknown, so take both."""
    if not content_type.startswith("application/json"):
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    try:
        decoded = json.loads(raw)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}
