"""One pooled ``requests.Session`` per process (providers/session.py): shared, cookie-free, per fork."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import responses

from django_callauth.providers import session as session_module
from django_callauth.providers.http import HttpClient
from django_callauth.providers.session import session


def test_one_session_for_every_call_and_thread() -> None:
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(session())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {id(made) for made in seen} == {id(session())}


def test_a_forked_worker_makes_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = session()
    monkeypatch.setattr(session_module.os, "getpid", lambda: -1)
    child = session()
    assert child is not parent
    assert session() is child


def test_no_cookie_a_provider_sets_is_kept_or_sent_back() -> None:
    client = HttpClient(vendor="x", credential="token", url_setting="CALLAUTH_X_URL", secrets=())
    with responses.RequestsMock() as mocked:
        mocked.get("https://provider.example/a", json={}, headers={"Set-Cookie": "track=1; Path=/"})
        mocked.get("https://provider.example/b", json={})
        client.request("GET", "https://provider.example/a", "GET a", client.deadline_at())
        client.request("GET", "https://provider.example/b", "GET b", client.deadline_at())
        assert "Cookie" not in mocked.calls[1].request.headers
    assert len(session().cookies) == 0
