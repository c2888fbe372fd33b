"""The events stream (web/events.py, flows/push.py): under ASGI a page hears of its call as it commits.

Each test drives Django's ``AsyncClient`` (an ASGI request, as uvicorn makes) in one event
loop run by ``async_to_sync``; the sync parts (a start, a call, a webhook) run in the test's
thread through ``sync_to_async``, inside the test's transaction, with their on-commit
publishes executed. The browser's own use of the stream is in test_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.cache import caches
from django.db import connection
from django.test import AsyncClient, Client
from django.urls import reverse

from django_callauth import flows
from django_callauth.flows import push, simulate_call
from django_callauth.web import events

from .helpers import (
    PHONE,
    START_GET,
    FlowFactory,
    RootLog,
    assert_json_error,
    client_holding,
    start,
    start_answer,
    the_flow,
    url,
)
from .helpers.caches import REDIS_URL, use_redis_cache

pytestmark = pytest.mark.django_db

# Headers as both clients take them (AsyncClient reads other keywords as ASGI scope).
EVENT_STREAM = {"headers": {"Accept": "text/event-stream"}}
ASKS_JSON = {"headers": {"Accept": "application/json"}}


class Stream:
    """An open events stream, read event by event (comments are heartbeats)."""

    def __init__(self, response: Any) -> None:
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/event-stream")
        self.response = response
        self.chunks: AsyncIterator[bytes] = aiter(response.streaming_content)

    async def next(self) -> str:
        """The next chunk's text: an event, a heartbeat comment, or '' once the stream ended."""
        try:
            return (await anext(self.chunks)).decode()
        except StopAsyncIteration:
            return ""

    async def status(self) -> str:
        """The status of the next status event (skipping heartbeats); '' once the stream ended."""
        while True:
            text = await self.next()
            if not text:
                return ""
            if "event: status" in text:
                return str(json.loads(text.split("data: ", 1)[1])["status"])


@pytest.fixture(autouse=True)
def _per_process_cache(settings: Any) -> None:
    """The tests' own per-process cache (so the per-process broker), even where the run's cache is
    Redis; the tests of Redis ask for it (``redis_cache``, ``any_broker``), and override this."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    caches["default"].clear()  # rate-limit counters of earlier tests


def asgi_twin(client: Client) -> AsyncClient:
    """An ASGI client holding ``client``'s cookies: the same browser, served by an ASGI server."""
    twin = AsyncClient()
    twin.cookies = client.cookies
    return twin


def run(scenario: Callable[[], Any]) -> Any:
    return async_to_sync(scenario)()


def assert_no_stream_offered(client: Client) -> None:
    """Under ASGI, the page of ``client``'s flow polls: no ``events_url``, and the stream is refused."""

    async def scenario() -> tuple[dict[str, Any], Any]:
        twin = asgi_twin(client)
        return (await twin.get(url("challenge"), **ASKS_JSON)).json(), await twin.get(url("events"), **EVENT_STREAM)

    payload, refused = run(scenario)
    assert "events_url" not in payload
    assert_json_error(refused, 404, "push_unavailable")


@pytest.fixture
def started(client: Client) -> Client:
    """A browser with a sandbox login started."""
    assert start(client).status_code == 201
    return client


def call_in(django_capture_on_commit_callbacks: Any, call_to: str, caller: str = PHONE) -> Callable[[], Any]:
    """The sandbox call, its transaction's on-commit work (the publish) run as a commit runs it."""

    def call() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            simulate_call(call_to, caller)

    return sync_to_async(call)


def test_a_call_reaches_the_open_stream_and_the_stream_ends_with_it(
    started: Client, django_capture_on_commit_callbacks: Any
) -> None:
    call = call_in(django_capture_on_commit_callbacks, the_flow(started).call_to)

    async def scenario() -> list[str]:
        stream = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
        seen = [await stream.status()]
        await call()
        seen += [await stream.status(), await stream.next()]
        return seen

    assert run(scenario) == ["pending", "confirmed", ""]


def test_a_call_from_another_phone_ends_the_stream_as_failed(
    started: Client, django_capture_on_commit_callbacks: Any
) -> None:
    call = call_in(django_capture_on_commit_callbacks, the_flow(started).call_to, caller="+79009999999")

    async def scenario() -> list[str]:
        stream = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
        await stream.status()
        await call()
        return [await stream.status(), await stream.next()]

    assert run(scenario) == ["failed", ""]


def test_the_challenge_payload_offers_the_stream_only_under_asgi(started: Client) -> None:
    async def asgi_payload() -> dict[str, Any]:
        response = await asgi_twin(started).get(url("challenge"), **ASKS_JSON)
        return dict(response.json())

    assert run(asgi_payload)["events_url"] == url("events")
    assert "events_url" not in started.get(url("challenge"), **ASKS_JSON).json()
    # Under WSGI the stream would hold a worker for the whole wait: it is refused.
    assert_json_error(started.get(url("events"), **EVENT_STREAM), 404, "push_unavailable")


def test_push_turned_off_offers_no_stream(started: Client, settings: Any) -> None:
    settings.CALLAUTH_PUSH = None

    assert_no_stream_offered(started)


def test_push_turned_off_publishes_nothing(
    started: Client, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CALLAUTH_PUSH = None
    with django_capture_on_commit_callbacks() as on_commit:
        simulate_call(the_flow(started).call_to, PHONE)
    assert on_commit == []  # nor does the tests' per-process cache keep a copy to replace


def test_a_flow_its_provider_is_asked_about_is_followed_by_polls(
    settings: Any, telefon_ip_api: Any, client: Client
) -> None:
    """telefon-ip without a webhook learns of the call only by the checks polls make: no stream."""
    settings.CALLAUTH_WEBHOOK_BASE_URL = ""
    telefon_ip_api.get(START_GET, json=start_answer())
    assert start(client).status_code == 201

    assert_no_stream_offered(client)


def test_the_stream_is_the_sessions_flow_and_no_one_elses(started: Client) -> None:
    async def scenario() -> Any:
        return await AsyncClient().get(url("events"), **EVENT_STREAM)

    assert_json_error(run(scenario), 400, "no_flow")


def test_only_get_opens_a_stream(started: Client) -> None:
    async def scenario() -> Any:
        return await asgi_twin(started).post(url("events"))

    response = run(scenario)
    assert_json_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET"


@pytest.fixture(params=["process", "redis"])
def any_broker(request: pytest.FixtureRequest, settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each broker in turn: this process's (the tests' LocMemCache), or Redis pub/sub."""
    if request.param == "redis":
        use_redis_cache(settings)
        monkeypatch.setattr(push, "HEALTH_CHECK_SECONDS", 0.05)  # the subscriber's idle wake-ups too
    return str(request.param)


def test_an_idle_stream_sends_heartbeats_and_carries_no_secret(
    any_broker: str, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "HEARTBEAT_SECONDS", 0.2)
    assert start(client).status_code == 201
    flow = the_flow(client)

    async def scenario() -> list[str]:
        stream = Stream(await asgi_twin(client).get(url("events"), **EVENT_STREAM))
        return [await stream.next() for _ in range(3)]

    first, *then = run(scenario)
    assert then == [": keep-alive\n\n"] * 2
    assert flow.call_to not in first and flow.phone not in first and str(flow.pk) not in first


def test_one_session_cannot_hold_more_than_a_few_streams(started: Client) -> None:
    """Each stream costs a socket and a coroutine: a session opening thousands is refused past a few tabs."""

    async def scenario() -> list[str]:
        twin = asgi_twin(started)
        opened = [Stream(await twin.get(url("events"), **EVENT_STREAM)) for _ in range(push.MAX_STREAMS_PER_FLOW)]
        seen = [await stream.status() for stream in opened]
        refused = await twin.get(url("events"), **EVENT_STREAM)
        return [*seen, refused.json()["error"]]

    assert run(scenario) == ["pending"] * push.MAX_STREAMS_PER_FLOW + ["push_unavailable"]


def test_tabs_opening_at_once_past_the_limit_end_their_streams_empty(started: Client) -> None:
    """The limit is checked again as a stream starts: tabs that all passed the first check race."""
    flow_id = str(the_flow(started).pk)

    async def scenario() -> str:
        late = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
        broker = push.broker()
        assert broker is not None
        for _ in range(push.MAX_STREAMS_PER_FLOW):  # the other tabs started first
            broker.subscribe(flow_id)
        return await late.next()

    assert run(scenario) == ""  # the page polls


def test_a_session_holding_a_deleted_flow_has_no_stream(flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    holder = client_holding(flow)
    flow.delete()

    async def scenario() -> Any:
        return await asgi_twin(holder).get(url("events"), **EVENT_STREAM)

    assert_json_error(run(scenario), 400, "no_flow")


def test_a_flow_deleted_before_its_stream_starts_ends_it_empty(started: Client) -> None:
    flow = the_flow(started)

    async def scenario() -> str:
        stream = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
        await sync_to_async(flow.delete)()
        return await stream.next()

    assert run(scenario) == ""


def test_a_stream_lives_a_bounded_time_then_the_page_polls(started: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "MAX_STREAM_SECONDS", 0.1)

    async def scenario() -> list[str]:
        stream = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
        return [await stream.status(), await stream.status()]

    assert run(scenario) == ["pending", ""]  # ended without a final status


def test_a_flow_deleted_while_its_stream_is_open_ends_the_stream(started: Client) -> None:
    flow = the_flow(started)

    async def scenario() -> list[str]:
        stream = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
        seen = [await stream.status()]
        await sync_to_async(flow.delete)()  # callauth_cleanup, or an admin
        return [*seen, await stream.status()]

    assert run(scenario) == ["pending", ""]


def test_a_failing_read_leaves_no_stream_behind(started: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def database_down(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database is down")

    monkeypatch.setattr(flows, "flow_by_id", database_down)

    async def scenario() -> Any:
        return await asgi_twin(started).get(url("events"), **EVENT_STREAM)

    with pytest.raises(RuntimeError):
        run(scenario)
    broker = push.broker()
    assert broker is not None and broker.waiters.count() == 0


def test_a_stream_whose_event_loop_closed_is_dropped_at_the_next_publish() -> None:
    broker = push.ProcessBroker()

    async def subscribe() -> None:
        broker.subscribe("a-flow-id")

    loop = asyncio.new_event_loop()
    loop.run_until_complete(subscribe())
    loop.close()
    broker.publish("a-flow-id")
    assert broker.waiters.count() == 0


def test_a_cache_without_pub_sub_offers_no_stream(started: Client, shared_cache: Any) -> None:
    """'auto' with a file or database cache: nothing carries a change across processes, so pages poll."""

    assert_no_stream_offered(started)


def test_a_flow_of_a_provider_no_longer_configured_is_not_streamed(flow_factory: FlowFactory) -> None:
    holder = client_holding(flow_factory(provider="gone"))

    async def scenario() -> Any:
        return await asgi_twin(holder).get(url("events"), **EVENT_STREAM)

    assert_json_error(run(scenario), 404, "push_unavailable")


def test_the_stream_ends_with_the_flow_at_its_deadline(client: Client, settings: Any) -> None:
    settings.CALLAUTH_TTL = 1
    assert start(client).status_code == 201

    async def scenario() -> list[str]:
        stream = Stream(await asgi_twin(client).get(url("events"), **EVENT_STREAM))
        return [await stream.status(), await stream.status(), await stream.next()]

    assert run(scenario) == ["pending", "expired", ""]


def test_a_stream_of_this_process_sees_a_change_made_in_another(started: Client) -> None:
    """The per-process broker hears nothing from other processes: its streams read the row as a poll would."""
    flow = the_flow(started)

    def call_elsewhere() -> None:
        simulate_call(flow.call_to, PHONE)  # no on-commit run: nothing is published to this process

    async def scenario() -> str:
        stream = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
        await stream.status()
        await sync_to_async(call_elsewhere)()
        return await stream.status()

    assert isinstance(push.broker(), push.ProcessBroker)
    assert run(scenario) == "confirmed"


def test_a_rolled_back_transition_wakes_no_stream(started: Client) -> None:
    """Published on commit only: a page is never told of a state the database does not hold."""
    flow = the_flow(started)
    broker = push.broker()
    assert broker is not None

    async def scenario() -> bool:
        subscription = broker.subscribe(str(flow.pk))
        try:
            await sync_to_async(lambda: simulate_call(flow.call_to, PHONE))()  # the test's transaction: no commit
            return await subscription.wait(0.2)
        finally:
            broker.unsubscribe(subscription)

    assert run(scenario) is False


def test_an_app_follows_its_flow_by_its_own_stream(django_capture_on_commit_callbacks: Any) -> None:
    """The app's twin: the session in X-Session-Token, the stream's URL the app's own."""

    def call(call_to: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            simulate_call(call_to, PHONE)

    async def scenario() -> tuple[str, list[str]]:
        app = AsyncClient()
        body = (await app.post(reverse("callauth:app_start"), {"phone": PHONE}, content_type="application/json")).json()
        headers = {"X-Session-Token": body["session_token"], "Accept": "text/event-stream"}
        stream = Stream(await app.get(body["events_url"], headers=headers))
        seen = [await stream.status()]
        await sync_to_async(call)(body["call_to"])
        return body["events_url"], [*seen, await stream.status()]

    events_url, seen = run(scenario)
    assert events_url == reverse("callauth:app_events")
    assert seen == ["pending", "confirmed"]


def drop_our_subscriptions() -> None:
    """Kill this process's subscriber connections, found by name (never another test run's)."""
    import redis

    admin = redis.Redis.from_url(REDIS_URL)
    for client in admin.client_list(_type="pubsub"):
        if client["name"] == f"callauth-push-{os.getpid()}":
            admin.client_kill_filter(_id=client["id"])


class TestThroughRedis:
    """The default broker wherever the cache is Redis: every worker and host hears every commit."""

    @pytest.fixture(autouse=True)
    def _redis(self, redis_cache: Any) -> None:
        pass

    def test_a_call_committed_anywhere_reaches_the_stream(
        self, started: Client, django_capture_on_commit_callbacks: Any
    ) -> None:
        call = call_in(django_capture_on_commit_callbacks, the_flow(started).call_to)

        async def scenario() -> list[str]:
            stream = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
            seen = [await stream.status()]
            await call()
            return [*seen, await stream.status(), await stream.next()]

        assert isinstance(push.broker(), push.RedisBroker)
        assert run(scenario) == ["pending", "confirmed", ""]

    def test_a_dropped_subscription_ends_the_stream_so_the_page_polls(self, started: Client) -> None:
        async def scenario() -> list[str]:
            stream = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
            seen = [await stream.status()]
            await sync_to_async(drop_our_subscriptions)()
            return [*seen, await stream.next()]

        assert run(scenario) == ["pending", ""]

    def test_a_subscription_lost_before_the_stream_starts_ends_it_empty(self, started: Client) -> None:
        async def scenario() -> str:
            stream = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
            await sync_to_async(drop_our_subscriptions)()
            await asyncio.sleep(0.3)  # the subscriber notices
            return await stream.next()

        assert run(scenario) == ""

    def test_two_tabs_of_one_browser_each_hear_the_call(
        self, started: Client, django_capture_on_commit_callbacks: Any
    ) -> None:
        call = call_in(django_capture_on_commit_callbacks, the_flow(started).call_to)

        async def scenario() -> list[str]:
            tabs = [Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM)) for _ in range(2)]
            seen = [await tab.status() for tab in tabs]
            await call()
            return seen + [await tab.status() for tab in tabs]

        assert run(scenario) == ["pending", "pending", "confirmed", "confirmed"]

    def test_sites_sharing_one_redis_never_wake_each_others_streams(self, settings: Any) -> None:
        ours = push.broker()
        settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": "another-site"}}
        theirs = push.broker()
        assert ours is not None and theirs is not None and ours is not theirs

        async def scenario() -> bool:
            await ours.connect()
            subscription = ours.subscribe("a-flow-id")
            try:
                await sync_to_async(theirs.publish)("a-flow-id")
                return await subscription.wait(0.3)
            finally:
                ours.unsubscribe(subscription)

        assert run(scenario) is False


def test_a_failing_redis_is_asked_once_per_few_seconds_not_at_every_transition(
    settings: Any, root_log: RootLog
) -> None:
    settings.CALLAUTH_PUSH = "redis://127.0.0.1:1/0"
    broker = push.broker()
    assert broker is not None
    broker.publish("one-flow")
    broker.publish("another-flow")  # within the back-off: not tried
    assert [r.getMessage() for r in root_log.records if "could not be published" in r.getMessage()] == [
        "Flow one-flow: its change could not be published (ConnectionError)"
    ]


def test_a_redis_that_accepts_but_never_answers_offers_no_stream(
    started: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13's hung Redis: a stream gives up on it at once rather than holding the page."""
    monkeypatch.setattr(push, "SUBSCRIBE_TIMEOUT_SECONDS", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never answers
        settings.CALLAUTH_PUSH = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"

        async def scenario() -> Any:
            return await asgi_twin(started).get(url("events"), **EVENT_STREAM)

        assert_json_error(run(scenario), 404, "push_unavailable")


def test_an_unreachable_redis_offers_no_stream_and_the_page_polls(started: Client, settings: Any) -> None:
    settings.CALLAUTH_PUSH = "redis://127.0.0.1:1/0"

    async def scenario() -> Any:
        return await asgi_twin(started).get(url("events"), **EVENT_STREAM)

    assert_json_error(run(scenario), 404, "push_unavailable")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_streams_read_gives_its_database_connection_back(client: Client, settings: Any) -> None:
    """5,000 open streams must not hold 5,000 connections: each read releases its own, as a request does."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"  # the view's read touches the database
    assert start(client).status_code == 201

    async def scenario() -> str:
        return await Stream(await asgi_twin(client).get(url("events"), **EVENT_STREAM)).status()

    assert run(scenario) == "pending"
    assert connection.connection is None


def test_a_stream_whose_cache_fails_to_answer_reads_the_database(
    started: Client,
    shared_cache: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    root_log: RootLog,
) -> None:
    settings.CALLAUTH_PUSH = "process"  # a file cache has no pub/sub: this process's streams
    call = call_in(django_capture_on_commit_callbacks, the_flow(started).call_to)

    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache down")

    async def scenario() -> list[str]:
        stream = Stream(await asgi_twin(started).get(url("events"), **EVENT_STREAM))
        seen = [await stream.status()]
        monkeypatch.setattr(type(shared_cache), "get", down)
        await call()
        return [*seen, await stream.status()]

    assert run(scenario) == ["pending", "confirmed"]
    assert any("the cache failed to answer (ConnectionError)" in r.getMessage() for r in root_log.records)
