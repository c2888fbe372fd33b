"""Browsers of the example site as its challenge page's script drives it, for the stack test and benchmarks.

Each ``LoginClient`` has its own cookie jar and sends what the page's script sends
(``Accept: application/json``, the CSRF header). By default every request goes on a new
connection, as a load balancer in front of several workers would spread them: a kept-alive
connection would pin one browser to one gunicorn worker and hide exactly what a multi-worker
test is after.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

#: How often the challenge page's script polls ``status`` (``POLL_MS`` in static/callauth/challenge.js).
PAGE_POLL_SECONDS = 2.0
_HOME_PHONE = re.compile(r'<strong class="home-phone">([^<]*)</strong>')


@dataclass
class LoginTimes:
    """Monotonic timestamps of one login, as its browser saw them (None: never happened)."""

    started: float | None = None
    called: float | None = None  # the call was made (the webhook, if any, answered)
    confirmed_seen: float | None = None
    logged_in: float | None = None
    polls: int = 0
    webhook_late: bool = False  # the provider got no answer to its webhook in time


@dataclass
class LoginClient:
    """One browser: its own cookies; each request tagged ``X-Client: <tag>`` for the server's access log."""

    base_url: str
    tag: str
    new_connection_each_request: bool = True
    timeout: float = 30.0
    #: Every request sent: ("METHOD /path", HTTP status, seconds until the answer's headers).
    sent: list[tuple[str, int, float]] = field(default_factory=list)
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.headers.update({"X-Client": self.tag, "Accept": "application/json"})
        if self.new_connection_each_request:
            self.session.headers["Connection"] = "close"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"X-CSRFToken": self.session.cookies.get("csrftoken", ""), **kwargs.pop("headers", {})}
        response = self.session.request(method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs)
        self.sent.append((f"{method} {path}", response.status_code, response.elapsed.total_seconds()))
        return response

    def open_login_page(self) -> None:
        """What a person's first visit does: the CSRF cookie."""
        self.request("GET", "/login/", headers={"Accept": "text/html"}).raise_for_status()

    def start(self, phone: str) -> requests.Response:
        return self.request("POST", "/callauth/start/", data={"phone": phone})

    def status(self) -> str:
        response = self.request("GET", "/callauth/status/")
        return str(response.json().get("status", response.json().get("error")))

    def challenge(self) -> dict[str, Any]:
        """The challenge as the page's script reads it (JSON): the number to call, ``events_url`` if pushed."""
        response = self.request("GET", "/callauth/challenge/")
        response.raise_for_status()
        return dict(response.json())

    def complete(self) -> requests.Response:
        return self.request("POST", "/callauth/complete/")

    def listen_until_decided(self, events_url: str, times: LoginTimes, deadline: float) -> str:
        """Read the push stream at ``events_url`` as the page's ``EventSource`` does, until a status
        other than pending (or ``deadline``); reconnects after the stream's ``retry:`` if it ends first.

        Each stream counts once in ``sent``, with the seconds until its headers.
        """
        status, retry = "pending", 3.0
        while status == "pending" and time.monotonic() < deadline:
            left = max(1.0, deadline - time.monotonic())
            with self.session.get(
                self.base_url + events_url,
                headers={"Accept": "text/event-stream"},
                stream=True,
                timeout=(self.timeout, min(left, 60.0)),
            ) as response:
                self.sent.append((f"GET {events_url}", response.status_code, response.elapsed.total_seconds()))
                if response.status_code != 200:
                    return f"events answered {response.status_code}"
                event = ""
                for line in response.iter_lines(decode_unicode=True):
                    if line.startswith("retry:"):
                        retry = int(line[6:].strip() or 3000) / 1000
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "status":
                        status = str(json.loads(line[5:]).get("status"))
                        if status != "pending":
                            break
            if status == "pending":
                times.polls += 1  # a reconnect: the stream ended while the flow was pending
                time.sleep(retry)
        return status

    def logged_in_phone(self) -> str | None:
        """The phone the example's home page shows, or None when "/" sends the browser to log in."""
        response = self.request("GET", "/", headers={"Accept": "text/html"}, allow_redirects=False)
        found = _HOME_PHONE.findall(response.text) if response.status_code == 200 else []
        return found[0] if len(found) == 1 else None

    def poll_until_decided(self, interval: float, times: LoginTimes, deadline: float) -> str:
        """Poll ``status`` every ``interval`` seconds after each answer, as the page's script does."""
        while True:
            time.sleep(interval)
            status = self.status()
            times.polls += 1
            if status != "pending" or time.monotonic() > deadline:
                return status

    def copy(self, tag: str) -> LoginClient:
        """A second tab of the same browser: the same cookies, its own connection."""
        twin = LoginClient(self.base_url, tag, self.new_connection_each_request, self.timeout)
        twin.session.cookies.update(self.session.cookies)
        return twin


def run_all(count: int, target: Any, *, stagger: float = 0.0) -> list[BaseException]:
    """``target(i)`` in ``count`` threads at once (started ``stagger`` seconds apart); the exceptions raised."""
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
        if stagger:
            time.sleep(stagger)
    for thread in threads:
        thread.join()
    return errors
