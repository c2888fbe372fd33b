"""The example site as a real server process, and ``LiveClient``: a person's browser played by ``requests``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from benchmarks.stack import free_port, serving

from .clients import home_phone
from .constants import PHONE

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example_project"

# The stack test's own database and Redis database: never the test database, which the
# suite itself may be running on at the same time.
STACK_DATABASE_URL = os.environ.get("CALLAUTH_STACK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/callauth_stack")
STACK_CACHE_URL = os.environ.get("CALLAUTH_STACK_CACHE_URL", "redis://127.0.0.1:6379/4")


@contextmanager
def example_site_server(folder: Path, *, asgi: bool = False, **settings: str) -> Iterator[str]:
    """The example site on the sandbox, served by ``runserver`` (``asgi``: uvicorn) on loopback; yields its base URL.

    A real server process with its own SQLite file in ``folder``, so a browser can use it
    as people do. ``settings`` are environment variables over the defaults here (the
    example reads every ``CALLAUTH_*`` setting from the environment).
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALLAUTH_") and k != "DATABASE_URL"}
    environ.update(
        DJANGO_SETTINGS_MODULE="example.settings",
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        DEBUG="True",
        CALLAUTH_PROVIDER="sandbox",
        CALLAUTH_SANDBOX_IN_PRODUCTION="true",
        # Every try logs in from 127.0.0.1; the limits have tests of their own.
        CALLAUTH_RATE_LIMITS='{"ip": null, "phone": null}',
        LANGUAGE_CODE="en",
        PYTHONUNBUFFERED="1",
        **settings,
    )
    manage = [sys.executable, str(EXAMPLE_PROJECT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=environ, check=True, capture_output=True)
    port = free_port()
    command = [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"]
    if asgi:  # one worker: its streams hear the sandbox's calls in process (CALLAUTH_PUSH "auto", LocMemCache)
        command = [sys.executable, "-m", "uvicorn", "example.asgi:application", "--app-dir", str(EXAMPLE_PROJECT)]
        command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with serving(command, environ, f"http://127.0.0.1:{port}", startup=20, stop=10, log=folder / "server.log") as base:
        yield base


class LiveClient:
    """A person's browser against a live site, played by a ``requests`` session: cookies, CSRF, JSON or HTML."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        page = self.session.get(base_url + "/login/", timeout=10)
        assert page.status_code == 200

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Accept": "application/json", "X-CSRFToken": self.session.cookies.get("csrftoken", "")}
        return self.session.request(method, self.base_url + path, headers=headers, timeout=10, **kwargs)

    def start(self, phone: str = PHONE, **extra: str) -> dict[str, Any]:
        response = self.api("POST", "/callauth/start/", data={"phone": phone, **extra})
        assert response.status_code == 201, response.text
        return response.json()

    def status(self) -> str:
        response = self.api("GET", "/callauth/status/")
        assert response.status_code == 200, response.text
        return response.json()["status"]

    def wait_for_status(self, expected: str, seconds: float = 6.0) -> str:
        """Poll as the page's script does, until ``expected`` or ``seconds`` pass."""
        deadline = time.monotonic() + seconds
        status = self.status()
        while status != expected and time.monotonic() < deadline:
            time.sleep(0.25)
            status = self.status()
        return status

    def complete(self) -> requests.Response:
        return self.api("POST", "/callauth/complete/")

    def home(self) -> requests.Response:
        return self.session.get(self.base_url + "/", timeout=10, allow_redirects=False)


def assert_logged_in_as(client: LiveClient, phone: str) -> None:
    home = client.home()
    assert home.status_code == 200
    assert home_phone(home.text) == phone
