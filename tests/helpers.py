"""What the tests share: telefon-ip constants, flows and time, browser helpers, the example site as a server."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import requests
import responses
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from benchmarks.stack import free_port, serving
from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow, FlowStatus

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

JSON = {"HTTP_ACCEPT": "application/json"}
PHONE = "+79001234567"
PHONE_FOR_PROVIDER = "89001234567"
OTHER_PHONE = "+79007654321"
OTHER_PHONE_FOR_PROVIDER = "89007654321"

# What each JSON error code says, exactly.
MESSAGES = {
    "no_flow": "There is no login by phone call in progress in this browser. Enter your phone number to start.",
    "not_confirmed": "We have not received your call yet. Call the number shown, then try again.",
    "expired": "Time to call is up. Enter your phone number to get a new number to call.",
    "already_used": "This call was already used to log in. Start again to log in once more.",
    "phone_mismatch": "The call came from a different phone than the number you entered. Call from that phone.",
    "no_account": "There is no account with this phone number.",
    "invalid_request": "The request body must be a JSON object.",
}

TOKEN = "tok-secret"
API = f"https://api.telefon-ip.ru/api/v1/authcalls/{TOKEN}/"
START_POST = API + "reverse_auth_phone_post"
START_GET = API + "reverse_auth_phone_get"
PROVIDER_ID = 122760
OTHER_PROVIDER_ID = 555001
AUTH_PHONE = "79644115786"  # the number to call, as the provider sends it
CALL_TO = "+79644115786"

SANDBOX_CALL_TO = "+79990001234"  # the number a flow made by ``FlowFactory`` asks to call

# A clock fixed at T0 (the ``clock`` fixture): 20 s into a minute, one ten-second rate-limit bucket past an edge.
T0 = datetime(2030, 1, 15, 12, 0, 20, tzinfo=timezone.get_fixed_timezone(0))


@dataclass
class Clock:
    """What ``timezone.now()`` and the package's other clocks answer while a test runs; nothing sleeps."""

    now: datetime

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class Sent:
    """One signal of django_callauth.signals as a receiver got it (without ``signal``)."""

    signal: str
    sender: Any
    kwargs: dict[str, Any]


class SignalLog(list[Sent]):
    """Every signal of django_callauth.signals sent while a test runs, in order (the ``sent`` fixture)."""

    def of(self, name: str) -> list[Sent]:
        return [event for event in self if event.signal == name]


class FlowFactory:
    """Makes flow rows as a start would leave them (the ``flow_factory`` fixture).

    A pending flow of PHONE on the sandbox, created now (or ``age`` ago) and living two
    minutes, unless ``fields`` say otherwise; a confirmed one is confirmed by its own phone
    at its creation unless told. A module whose flows belong to another provider changes
    ``defaults``.
    """

    def __init__(self) -> None:
        self.defaults: dict[str, Any] = {
            "phone": PHONE,
            "call_to": SANDBOX_CALL_TO,
            "provider": "sandbox",
            "provider_id": "sandbox-1",
        }

    def __call__(self, *, age: timedelta = timedelta(0), lifetime: int = 120, **fields: Any) -> CallAuthFlow:
        created = fields.pop("created_at", None) or timezone.now() - age
        values = {**self.defaults, "created_at": created, "expires_at": created + timedelta(seconds=lifetime)}
        values.update(fields)
        if values.get("status") == FlowStatus.CONFIRMED:
            values.setdefault("caller", values["phone"])
            values.setdefault("confirmed_at", created)
        return CallAuthFlow.objects.create(**values)


def stored(flow: CallAuthFlow) -> CallAuthFlow:
    """``flow`` as the database has it now."""
    return CallAuthFlow.objects.get(pk=flow.pk)


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


def check_calls(api: responses.RequestsMock) -> list[Any]:
    """The checks the app asked telefon-ip for, in order."""
    return [call for call in api.calls if "/reverse_auth_phone_check/" in call.request.url]


def webhook_path(api: responses.RequestsMock, index: int = 0) -> str:
    """The path of the webhook URL the app gave telefon-ip in its ``index``-th start."""
    starts = [call for call in api.calls if call.request.url.endswith("/reverse_auth_phone_post")]
    return urlsplit(json.loads(starts[index].request.body)["webhook"]).path


def webhook_secret(path: str) -> str:
    """The per-flow secret in a webhook path."""
    return path.rstrip("/").split("/")[-1]


def call_webhook(path: str, method: str = "get", **params: str | None) -> Any:
    """telefon-ip calling the webhook at ``path``: a call from PHONE to flow PROVIDER_ID unless ``params`` say
    otherwise (None leaves a parameter out)."""
    query = {"success": "True", "phone": PHONE_FOR_PROVIDER, "id": str(PROVIDER_ID), **params}
    query = {key: value for key, value in query.items() if value is not None}
    return getattr(Client(), method)(path + "?" + urlencode(query))


def snapshot() -> list[dict[str, Any]]:
    """Every flow row, every column: "writes nothing" means this does not change."""
    return list(CallAuthFlow.objects.order_by("pk").values())


def same_browser(source: Client, count: int) -> list[Client]:
    """``count`` clients sending ``source``'s cookies: one browser's concurrent requests (its tabs)."""
    clients = [Client() for _ in range(count)]
    for client in clients:
        client.cookies.update(source.cookies)
    return clients


def robust_client() -> Client:
    """A browser that gets the 500 page where a test client would raise the exception."""
    return Client(raise_request_exception=False)


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"callauth:{name}", kwargs=kwargs or None)


def assert_json_error(response: Any, status: int, code: str, message: str | None = None) -> None:
    """A JSON error is exactly {"error", "message"}, with the expected code, status and message.

    The message is checked against ``message``, or else against MESSAGES for the codes there.
    """
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"].strip()
    expected = message if message is not None else MESSAGES.get(code)
    if expected is not None:
        assert body["message"] == expected


def start(client: Client, phone: str = PHONE, **extra: Any) -> Any:
    return client.post(url("start"), {"phone": phone, **extra}, **JSON)


def poll(client: Client) -> str:
    """The flow's status, as the challenge page's script asks it."""
    return str(client.get(url("status"), **JSON).json()["status"])


def complete(client: Client) -> Any:
    """Finish the login as the page's script does (JSON)."""
    return client.post(url("complete"), **JSON)


def the_flow(client: Client) -> CallAuthFlow:
    return CallAuthFlow.objects.get(pk=client.session[SESSION_FLOW_KEY])


def browser_with(flow: CallAuthFlow) -> Client:
    """A browser whose session holds ``flow``, as if it had started it."""
    client = Client()
    session = client.session
    session[SESSION_FLOW_KEY] = str(flow.pk)
    session.save()
    return client


def sandbox_confirm(client: Client, phone: str = PHONE, **extra: Any) -> CallAuthFlow:
    assert start(client, phone, **extra).status_code == 201
    assert client.post(url("sandbox_call"), **JSON).json()["status"] == "confirmed"
    return the_flow(client)


@dataclass
class PageForm:
    """A form of a page as a browser would send it: where to, and its fields' values."""

    action: str
    fields: dict[str, str]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[PageForm] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(PageForm(values.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1].fields[values["name"]] = values.get("value", "")


def page_forms(html: str) -> list[PageForm]:
    """The forms of ``html``, in order (the CSRF field left out): what a person can submit there."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        form.fields.pop("csrfmiddlewaretoken", None)
    return parser.forms


def submit(client: Client, form: PageForm, **extra: Any) -> Any:
    """Send ``form`` as the browser would, with the fields the page filled in."""
    return client.post(form.action, form.fields, **extra)


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


EXAMPLE_PROJECT = Path(__file__).resolve().parent.parent / "example_project"

# -- the example site in a browser -------------------------------------------------

TYPED_PHONE = "+7 900 123-45-67"  # PHONE, as a person types it
CHALLENGE = "/callauth/challenge/"
SANDBOX_CALL = "/callauth/sandbox/call/"
PHONE_SCREEN: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP_SCREEN: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}


def open_challenge(page: Page, site: str, phone: str = TYPED_PHONE) -> None:
    """Type the phone on the login page and submit it: the page says whom to call."""
    page.goto(site + "/login/")
    page.fill("#callauth-phone", phone)
    page.click("form.callauth-form button[type=submit]")
    page.wait_for_url(site + CHALLENGE)


def api_post(context: BrowserContext, site: str, path: str, **data: str) -> dict[str, Any]:
    """POST as an API client of this browser's session (its cookies, its CSRF token); the JSON answer."""
    csrf = next(cookie["value"] for cookie in context.cookies() if cookie["name"] == "csrftoken")
    headers = {"Accept": "application/json", "X-CSRFToken": csrf}
    return context.request.post(site + path, form=data, headers=headers).json()


@contextmanager
def example_site_server(folder: Path, **settings: str) -> Iterator[str]:
    """The example site on the sandbox, served by ``runserver`` on loopback; yields its base URL.

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
    with serving(command, environ, f"http://127.0.0.1:{port}", startup=20, stop=10, log=folder / "server.log") as base:
        yield base


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


class BrokenCache:
    """A cache that is down: every read and write raises (monkeypatched over a module's ``_cache``)."""

    def get_many(self, *args: Any) -> None:
        raise ConnectionError("cache down")

    set = get_many
