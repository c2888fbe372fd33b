"""The status poll is the hot path: every open challenge page hits it every second.

These tests pin how much work one poll does, in database queries and provider requests,
so a change that adds work there shows up as a failing number, not as a slow site. A
flow's state is served from a shared cache (flows/cache.py): the first poll reads the row, the
next ones only the session. A per-process cache is never trusted: every poll reads the row.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.utils import timezone

from tests.helpers import CALL_TO, PROVIDER_ID, FlowFactory, check_answer, check_url, client_holding, poll

pytestmark = pytest.mark.django_db

ON_TELEFON_IP = {"provider": "telefon_ip", "provider_id": str(PROVIDER_ID), "call_to": CALL_TO}


class RefusesWrites:
    """A cache full to its limit: reads and deletes work, writes fail (Redis under maxmemory)."""

    def set(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("OOM command not allowed when used memory > 'maxmemory'")


class Down:
    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Connection refused")

    def set(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Connection refused")

    def delete(self, *args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("Connection refused")


class WritesRefusedCache(RefusesWrites, LocMemCache):
    pass


# Shared by every process, as a file cache is: the poll trusts its copies (flowcache.shared).
class SharedWritesRefusedCache(RefusesWrites, FileBasedCache):
    pass


class SharedDownCache(Down, FileBasedCache):
    pass


@responses.activate
def test_a_second_poll_reads_only_the_session(
    telefon_ip: None, shared_cache: Any, django_assert_num_queries: Any, flow_factory: FlowFactory
) -> None:
    browser = client_holding(flow_factory(**ON_TELEFON_IP, webhook_secret_hash="0" * 64))
    poll(browser)
    with django_assert_num_queries(1):  # the session; the flow comes from the cache
        assert poll(browser) == "pending"
    assert len(responses.calls) == 0


@responses.activate
def test_a_webhook_landing_elsewhere_is_seen_by_the_next_poll(
    telefon_ip: None, shared_cache: Any, django_assert_num_queries: Any, flow_factory: FlowFactory
) -> None:
    responses.get(check_url(), json=check_answer())
    flow = flow_factory(**ON_TELEFON_IP, webhook_secret_hash="0" * 64)
    browser = client_holding(flow)
    assert poll(browser) == "pending"  # cached from here on
    flow.note_webhook()  # another worker took the provider's webhook
    assert poll(browser) == "confirmed"
    assert [call.request.url for call in responses.calls] == [check_url()]


@pytest.mark.parametrize("backend", [SharedWritesRefusedCache, SharedDownCache], ids=["writes_refused", "down"])
def test_a_failing_cache_never_hides_a_transition(
    settings: Any,
    tmp_path: Any,
    backend: type,
    flow_factory: FlowFactory,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": tmp_path}
    }
    flow = flow_factory()
    browser = client_holding(flow)
    assert poll(browser) == "pending"  # a copy, in a shared cache that then fails
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.{backend.__name__}", "LOCATION": tmp_path}}
    with django_capture_on_commit_callbacks(execute=True):  # it commits: its copy cannot be stored
        flow.confirm("+79001234567")  # the old copy is deleted, or unreadable
    assert poll(browser) == "confirmed"
    assert f"Flow {flow.pk}: its state could" in caplog.text  # not be cached; nor deleted, when down


@responses.activate
def test_poll_of_a_webhook_flow_reads_two_rows_and_asks_nobody(
    telefon_ip: None, django_assert_num_queries: Any, flow_factory: FlowFactory
) -> None:
    browser = client_holding(flow_factory(**ON_TELEFON_IP, webhook_secret_hash="0" * 64))
    with django_assert_num_queries(2):  # the session, the flow
        response = browser.get("/callauth/status/", HTTP_ACCEPT="application/json")
    assert response.json()["status"] == "pending"
    assert len(responses.calls) == 0


@responses.activate
def test_poll_of_a_check_flow_between_checks_reads_two_rows_and_asks_nobody(
    telefon_ip: None, django_assert_num_queries: Any, flow_factory: FlowFactory
) -> None:
    browser = client_holding(flow_factory(**ON_TELEFON_IP, last_checked_at=timezone.now()))
    with django_assert_num_queries(2):
        response = browser.get("/callauth/status/", HTTP_ACCEPT="application/json")
    assert response.json()["status"] == "pending"
    assert len(responses.calls) == 0


@responses.activate
def test_poll_when_a_check_is_due_asks_the_provider_once(
    telefon_ip: None, django_assert_num_queries: Any, flow_factory: FlowFactory
) -> None:
    responses.get(check_url(), json=check_answer(None))
    browser = client_holding(flow_factory(**ON_TELEFON_IP))
    # session, flow, the conditional update that claims the check (nothing read back)
    with django_assert_num_queries(3):
        response = browser.get("/callauth/status/", HTTP_ACCEPT="application/json")
    assert response.json()["status"] == "pending"
    assert [call.request.url for call in responses.calls] == [check_url()]
