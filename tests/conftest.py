"""Shared fixtures and the ``postgres`` marker.

Tests marked ``postgres`` need real row locks and concurrent connections, which SQLite
does not have: they are skipped on SQLite with the reason, and fail instead of skipping
when ``CALLAUTH_REQUIRE_POSTGRES`` is set (CI sets it, so they can never silently vanish).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.conf import settings

from tests.fake_telefon_ip import FakeTelefonIp
from tests.helpers import TOKEN, RootLog


def _on_postgres() -> bool:
    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _on_postgres():
        return
    if os.environ.get("CALLAUTH_REQUIRE_POSTGRES"):
        raise pytest.UsageError("CALLAUTH_REQUIRE_POSTGRES is set but the tests run on SQLite")
    skip = pytest.mark.skip(
        reason="needs PostgreSQL: SQLite has no row locks for race tests; "
        "set CALLAUTH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fake_telefon_ip() -> Iterator[FakeTelefonIp]:
    """A fake telefon-ip API on loopback, a real HTTP server."""
    with FakeTelefonIp() as fake:
        yield fake


@pytest.fixture
def telefon_ip(settings: Any) -> Any:
    """The telefon-ip provider in webhook mode, with the helpers' token."""
    settings.CALLAUTH_PROVIDER = "telefon_ip"
    settings.CALLAUTH_TELEFON_IP_TOKEN = TOKEN
    settings.CALLAUTH_WEBHOOK_BASE_URL = "https://site.example"
    return settings


@pytest.fixture
def provider(telefon_ip: Any) -> Iterator[responses.RequestsMock]:
    """telefon-ip played by ``responses``: every request the app makes is recorded in ``.calls``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def root_log() -> Iterator[RootLog]:
    """Everything that reaches the root logger's handlers, with the root at DEBUG unless a test sets another level.

    Unlike ``caplog``, nothing here sets the level of any logger but the root.
    """
    root, handler = logging.getLogger(), RootLog()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(saved_level)
