"""What the tests share: the telefon-ip constants, browser helpers (in-process and over HTTP) and a root log handler."""

from __future__ import annotations

import logging
import os
import re
import time
from datetime import timedelta
from typing import Any

import requests
from django.test import Client
from django.urls import reverse

from django_callauth import flowcache
from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow

JSON = {"HTTP_ACCEPT": "application/json"}
PHONE = "+79001234567"
PHONE_FOR_PROVIDER = "89001234567"
OTHER_PHONE = "+79007654321"

TOKEN = "tok-secret"
API = f"https://api.telefon-ip.ru/api/v1/authcalls/{TOKEN}/"
START_POST = API + "reverse_auth_phone_post"
START_GET = API + "reverse_auth_phone_get"
PROVIDER_ID = 122760
AUTH_PHONE = "79644115786"  # the number to call, as the provider sends it
CALL_TO = "+79644115786"

# The stack test's own database and Redis database: never the test database, which the
# suite itself may be running on at the same time.
STACK_DATABASE_URL = os.environ.get("CALLAUTH_STACK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/callauth_stack")
STACK_CACHE_URL = os.environ.get("CALLAUTH_STACK_CACHE_URL", "redis://127.0.0.1:6379/4")


def start_answer(provider_id: int = PROVIDER_ID, **data: Any) -> dict[str, Any]:
    """telefon-ip's answer to a start, with its third-party HTML fields (never to be shown)."""
    return {
        "success": True,
        "error": "",
        "data": {
            "auth_phone": AUTH_PHONE,
            "id": provider_id,
            "url_image": "https://api.telefon-ip.ru/api/v1/authcalls/get_qr_image/2841621/",
            "url_link": "<a href='tel:89644078713'>Позвони для авторизации</a>",
            **data,
        },
    }


def check_answer(phone: str | None = PHONE_FOR_PROVIDER, provider_id: int = PROVIDER_ID) -> dict[str, Any]:
    """telefon-ip's answer to a check: a call from ``phone``, or none yet when it is None."""
    if phone is None:
        return {"success": False, "error": "call not received", "data": {}}
    return {"success": True, "error": "", "data": {"phone": phone, "id": provider_id}}


def check_url(provider_id: int = PROVIDER_ID) -> str:
    return API + f"reverse_auth_phone_check/{provider_id}/"


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"callauth:{name}", kwargs=kwargs or None)


def assert_json_error(response: Any, status: int, code: str, message: str | None = None) -> None:
    """A JSON error is exactly {"error", "message"}, with the expected code and status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"].strip()
    if message is not None:
        assert body["message"] == message


def start(client: Client, phone: str = PHONE, **extra: Any) -> Any:
    return client.post(url("start"), {"phone": phone, **extra}, **JSON)


def the_flow(client: Client) -> CallAuthFlow:
    return CallAuthFlow.objects.get(pk=client.session[SESSION_FLOW_KEY])


def sandbox_confirm(client: Client, phone: str = PHONE, **extra: Any) -> CallAuthFlow:
    assert start(client, phone, **extra).status_code == 201
    assert client.post(url("sandbox_call"), **JSON).json()["status"] == "confirmed"
    return the_flow(client)


def home_phone(html: str) -> str | None:
    """The phone the example's home page shows, or None for any other page."""
    found = re.findall(r'<strong class="home-phone">([^<]*)</strong>', html)
    assert len(found) <= 1, found
    return found[0] if found else None


def logged_in_phone(client: Client) -> str | None:
    """The phone the home page shows, or None when "/" sends the browser to log in."""
    response = client.get("/")
    if response.status_code == 302:
        assert response["Location"].startswith("/login/")
        return None
    assert response.status_code == 200
    phone = home_phone(response.content.decode())
    assert phone is not None
    return phone


def move_time(flow: CallAuthFlow, seconds: int) -> None:
    """Make ``seconds`` pass for ``flow`` by moving all its timestamps into the past."""
    delta = timedelta(seconds=seconds)
    values = CallAuthFlow.objects.filter(pk=flow.pk).values().get()
    changes = {
        name: values[name] - delta
        for name in ("created_at", "expires_at", "webhook_received_at", "last_checked_at", "confirmed_at")
        if values[name] is not None
    }
    CallAuthFlow.objects.filter(pk=flow.pk).update(**changes)
    flowcache.store(CallAuthFlow.objects.get(pk=flow.pk))  # as a transition would: polls read the cache


class Browser:
    """A browser-like HTTP client of the example site: cookies, CSRF, JSON or HTML."""

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


def assert_logged_in_as(browser: Browser, phone: str) -> None:
    home = browser.home()
    assert home.status_code == 200
    assert f'<strong class="home-phone">{phone}</strong>' in home.text


class RootLog(logging.Handler):
    """A handler on the root logger: the records every handler there gets, and the text it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))  # as a real handler: the traceback included

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
