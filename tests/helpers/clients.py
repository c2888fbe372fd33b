"""Django's test ``Client`` as a person's browser: the JSON API, the pages and their forms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow, CallAuthPhone

from .constants import JSON, PHONE


def tabs_of(source: Client, count: int) -> list[Client]:
    """``count`` clients sending ``source``'s cookies: one browser's concurrent requests (its tabs)."""
    clients = [Client() for _ in range(count)]
    for client in clients:
        client.cookies.update(source.cookies)
    return clients


def robust_client() -> Client:
    """A client that gets the 500 page where a test client would raise the exception."""
    return Client(raise_request_exception=False)


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"callauth:{name}", kwargs=kwargs or None)


def assert_json_error(response: Any, status: int, code: str, message: str | None = None) -> None:
    """A JSON error is exactly {"error", "message"}, with the expected code and status.

    The message must be there; its words are checked only when ``message`` is given (the
    English of each code is test_errors.py's to pin, its Russian test_locale_ru.py's).
    """
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


def poll(client: Client) -> str:
    """The flow's status, as the challenge page's script asks it."""
    return str(client.get(url("status"), **JSON).json()["status"])


def complete(client: Client) -> Any:
    """Finish the login as the page's script does (JSON)."""
    return client.post(url("complete"), **JSON)


def the_flow(client: Client) -> CallAuthFlow:
    return CallAuthFlow.objects.get(pk=client.session[SESSION_FLOW_KEY])


def client_holding(flow: CallAuthFlow) -> Client:
    """A client whose session holds ``flow``, as if it had started it."""
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
    """The phone the home page shows, or None when "/" sends the client to log in."""
    response = client.get("/")
    if response.status_code == 302:
        assert response["Location"].startswith("/login/")
        return None
    assert response.status_code == 200
    phone = home_phone(response.content.decode())
    assert phone is not None
    return phone


def logged_in_user(client: Client) -> str | None:
    """The id of the user the session is logged in as (as the session stores it), or None."""
    return client.session.get(SESSION_KEY)


def phones_of(user: Any) -> list[str]:
    """The phones linked to ``user``, sorted."""
    return sorted(CallAuthPhone.objects.filter(user=user).values_list("phone", flat=True))
