"""A flow's state in the shared cache (flow_cache.py): a poll sees what the database says (invariant 20).

A transition's copy is stored when its transaction commits, never before; a poll's miss
never overwrites a newer copy; a per-process cache is not trusted at all; a cache that
hangs costs one timeout per few seconds. How much a poll costs with the cache working, and
a cache that fails, are in test_hot_path.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.db import transaction
from django.db.models.signals import post_init

from django_callauth.flows import cache as flow_cache
from django_callauth.models import CallAuthFlow, FlowStatus
from tests.helpers import JSON, PHONE, FlowFactory, client_holding, poll, stored, url

pytestmark = pytest.mark.django_db

Commits = Callable[..., Any]  # pytest-django's django_capture_on_commit_callbacks


class Rollback(Exception):
    pass


def test_a_copy_stored_by_another_version_of_the_model_is_a_miss_and_the_row_is_read(
    shared_cache: Any, flow_factory: FlowFactory, django_assert_num_queries: Any
) -> None:
    flow = flow_factory()
    browser = client_holding(flow)
    # During a deploy, a worker of another version cached the flow with a field this one lacks.
    row = CallAuthFlow.objects.filter(pk=flow.pk).values().get()
    shared_cache.set(flow_cache._key(flow.pk), {**row, "a_newer_field": 1})
    CallAuthFlow.objects.filter(pk=flow.pk).update(status=FlowStatus.CONFIRMED, caller=PHONE)  # the row moved on

    with django_assert_num_queries(2):  # the session, then the row
        assert browser.get(url("status"), **JSON).json()["status"] == "confirmed"
    cached, _wait = flow_cache.load_polled(str(flow.pk))  # the row replaced the unusable copy
    assert cached is not None and cached.status == FlowStatus.CONFIRMED


# -- a transition is seen once it commits, never before --------------------------------


def test_a_committed_transition_is_served_from_the_cache(
    shared_cache: Any,
    flow_factory: FlowFactory,
    django_capture_on_commit_callbacks: Commits,
    django_assert_num_queries: Any,
) -> None:
    flow = flow_factory()
    browser = client_holding(flow)
    assert poll(browser) == "pending"
    with django_capture_on_commit_callbacks(execute=True):
        assert flow.confirm(PHONE)
    with django_assert_num_queries(1):  # the session: the flow is the committed copy
        assert poll(browser) == "confirmed"


def test_a_rolled_back_transition_is_never_seen_by_a_poll(
    shared_cache: Any, flow_factory: FlowFactory, django_capture_on_commit_callbacks: Commits
) -> None:
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    browser = client_holding(flow)
    assert poll(browser) == "confirmed"  # cached
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Rollback):
        with transaction.atomic():
            assert flow.claim_for_login()
            raise Rollback  # project code failing after the claim
    assert stored(flow).status == FlowStatus.CONFIRMED
    assert [poll(browser) for _ in range(3)] == ["confirmed"] * 3


def test_a_poll_that_read_the_row_before_a_transition_never_overwrites_its_copy(
    shared_cache: Any, flow_factory: FlowFactory, django_capture_on_commit_callbacks: Commits
) -> None:
    """The poll reads the pending row; a webhook's confirmation commits; then the poll fills the cache."""
    flow = flow_factory()
    browser = client_holding(flow)
    raced: list[str] = []

    def confirm_elsewhere(sender: type, instance: CallAuthFlow, **kwargs: Any) -> None:
        if raced or instance.pk != flow.pk or instance.status != FlowStatus.PENDING:
            return
        raced.append("confirmed")
        with django_capture_on_commit_callbacks(execute=True):
            assert stored(flow).confirm(PHONE)

    post_init.connect(confirm_elsewhere, sender=CallAuthFlow)
    try:
        assert poll(browser) == "pending"  # what it read, before the confirmation
    finally:
        post_init.disconnect(confirm_elsewhere, sender=CallAuthFlow)
    assert raced == ["confirmed"]
    cached, _wait = flow_cache.load_polled(str(flow.pk))
    assert cached is not None and cached.status == FlowStatus.CONFIRMED  # the newer copy stayed
    assert poll(browser) == "confirmed"


# -- a per-process cache is not trusted -------------------------------------------------


def test_with_a_per_process_cache_a_change_made_by_another_process_shows_at_the_next_poll(
    settings: Any, flow_factory: FlowFactory, django_assert_num_queries: Any
) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}  # startproject's
    assert not flow_cache.shared()
    flow = flow_factory()
    browser = client_holding(flow)
    assert poll(browser) == "pending"
    # Another process (a webhook on another worker, manage.py callauth_simulate_call) writes
    # the row; this process's cache never hears of it.
    CallAuthFlow.objects.filter(pk=flow.pk).update(status=FlowStatus.CONFIRMED, caller=PHONE)
    with django_assert_num_queries(2):  # the session, the flow by primary key
        assert poll(browser) == "confirmed"
    assert caches["default"].get(flow_cache._key(flow.pk)) is None  # nothing copied there to go stale


# -- a cache that hangs ------------------------------------------------------------------

TIMEOUT = 0.2  # the cache's socket timeouts in these tests


class HangingServer:
    """A loopback TCP server that accepts connections and never answers (a Redis that hangs)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def hanging_cache(settings: Any) -> Iterator[HangingServer]:
    pytest.importorskip("redis")
    server = HangingServer()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{server.port}/0",
            "OPTIONS": {"socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT},
        }
    }
    yield server
    server.close()


def test_a_hanging_cache_costs_the_polls_one_timeout_per_back_off(
    hanging_cache: HangingServer, flow_factory: FlowFactory
) -> None:
    browser = client_holding(flow_factory())
    began = time.monotonic()
    assert [poll(browser) for _ in range(12)] == ["pending"] * 12  # from the database
    took = time.monotonic() - began
    assert len(hanging_cache.accepted) == 1  # one request waited for the cache; the others left it alone
    assert took < 12 * TIMEOUT, took  # 36 timeouts before the back-off (get, set, delete per poll)

    flow_cache._failed_at["default"] -= flow_cache.BACK_OFF_SECONDS  # the back-off is over
    assert poll(browser) == "pending"
    assert len(hanging_cache.accepted) == 2  # the cache is asked again


def test_a_transition_during_the_back_off_still_replaces_the_copy(
    shared_cache: Any, flow_factory: FlowFactory, django_capture_on_commit_callbacks: Commits
) -> None:
    flow = flow_factory()
    browser = client_holding(flow)
    assert poll(browser) == "pending"  # cached
    flow_cache._failed_at["default"] = time.monotonic()  # the cache just failed a poll
    with django_capture_on_commit_callbacks(execute=True):
        assert flow.confirm(PHONE)
    flow_cache._failed_at.clear()  # it answers again: polls read the copy, which is the new state
    cached, _wait = flow_cache.load_polled(str(flow.pk))
    assert cached is not None and cached.status == FlowStatus.CONFIRMED
    assert poll(browser) == "confirmed"


def test_the_cache_failing_when_it_deletes_a_stale_copy_is_a_miss(
    shared_cache: Any, flow_factory: FlowFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    flow = flow_factory()
    browser = client_holding(flow)
    assert poll(browser) == "pending"

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Connection reset by peer")

    monkeypatch.setattr(type(shared_cache), "delete", refuse)
    assert flow.confirm(PHONE)
    assert f"Flow {flow.pk}: its old state could not be deleted from the cache (ConnectionError)" in caplog.messages
    assert poll(browser) == "confirmed"  # the cache failed: polls read the database for a while


def test_a_cache_refusing_a_poll_s_copy_is_left_alone_for_the_back_off(
    shared_cache: Any, flow_factory: FlowFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    flow = flow_factory()
    browser = client_holding(flow)
    asked: list[str] = []
    add = type(shared_cache).add

    def refuse(self: Any, key: str, *args: Any, **kwargs: Any) -> bool:
        if not key.startswith("callauth:flow:"):  # the poll's count (guards/polls.py) is stored
            return add(self, key, *args, **kwargs)
        asked.append(key)
        raise ConnectionError("OOM command not allowed when used memory > 'maxmemory'")

    monkeypatch.setattr(type(shared_cache), "add", refuse)
    assert [poll(browser) for _ in range(3)] == ["pending"] * 3
    assert asked == [flow_cache._key(flow.pk)]  # once: the next polls read the database only
    assert f"Flow {flow.pk}: its state could not be cached (ConnectionError)" in caplog.messages
