"""The life of a flow: start, check, webhook, decide (docs/security.rst, invariants 2–4)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.signals import user_login_failed
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.http import HttpRequest
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from django_callauth import flows, signals
from django_callauth.flows import ReportOutcome, refresh
from django_callauth.guards import webhook_secrets
from django_callauth.models import CallAuthFlow, FailureReason, FlowStatus
from django_callauth.providers import get_provider_class
from django_callauth.providers.base import (
    CallAuthProvider,
    CallReport,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    StartedCall,
    WebhookStyle,
)
from django_callauth.providers.sandbox import SandboxProvider
from django_callauth.providers.telefon_ip import TelefonIpProvider
from tests.helpers import OTHER_PHONE as OTHER
from tests.helpers import PHONE, T0, Clock, FlowFactory, Sent, snapshot, stored

FAKE_PATH = "tests.test_flows.FakeProvider"


class FakeProvider(CallAuthProvider):
    """A provider that counts its calls and answers what the test told it to.

    ``CALLAUTH_PROVIDER`` imports this module as ``tests.test_flows``, which may be a
    different module object than the one pytest collected: tests therefore reach the
    class through ``get_provider_class()`` (the ``fake`` fixture), never by name.
    """

    name = "fake"
    webhook_style = WebhookStyle.PER_FLOW
    simulated = False

    starts: list[tuple[str, str | None]] = []
    checks: list[str] = []
    caller: str | None = None  # what ``check`` reports
    start_error: ProviderError | None = None
    check_error: ProviderError | None = None
    on_start: Callable[[str, str | None], None] | None = None

    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        cls = type(self)
        cls.starts.append((phone, webhook_url))
        if cls.on_start is not None:
            cls.on_start(phone, webhook_url)
        if cls.start_error is not None:
            raise cls.start_error
        return StartedCall(call_to=f"+7999555{len(cls.starts):04d}", provider_id=f"id-{len(cls.starts)}")

    def check(self, provider_id: str) -> CallReport:
        cls = type(self)
        cls.checks.append(provider_id)
        if cls.check_error is not None:
            raise cls.check_error
        return CallReport(caller=cls.caller, provider_id=provider_id)


@pytest.fixture(autouse=True)
def _flows_of_the_fake(flow_factory: FlowFactory) -> None:
    """The flows ``flow_factory`` makes here were started by the fake provider."""
    flow_factory.defaults.update(provider="fake", provider_id="id-1", call_to="+79995550001")


@pytest.fixture
def fake(settings: Any) -> Iterator[type[FakeProvider]]:
    settings.CALLAUTH_PROVIDER = FAKE_PATH
    settings.CALLAUTH_WEBHOOK_BASE_URL = ""
    settings.CALLAUTH_TTL = 120
    settings.CALLAUTH_CHECK_INTERVAL = 3
    cls: Any = get_provider_class()
    cls.starts, cls.checks = [], []
    cls.caller = cls.start_error = cls.check_error = cls.on_start = None
    cls.awaits_callback = False
    yield cls
    cls.on_start = None


def browser() -> HttpRequest:
    request = RequestFactory().post("/callauth/start/")
    request.session = SessionStore()
    return request


# -- start_flow -------------------------------------------------------------------


@pytest.mark.django_db
def test_start_flow_in_check_mode(fake: Any, clock: Clock, sent: list[Sent]) -> None:
    request = browser()
    flow = flows.start_flow(request, PHONE, "/after/")
    assert fake.starts == [(PHONE, None)]
    row = stored(flow)
    assert (row.phone, row.call_to, row.provider, row.provider_id) == (PHONE, "+79995550001", "fake", "id-1")
    assert (row.status, row.next_url, row.webhook_secret_hash) == (FlowStatus.PENDING, "/after/", "")
    assert (row.created_at, row.expires_at) == (T0, T0 + timedelta(seconds=120))
    assert request.session[flows.SESSION_FLOW_KEY] == str(flow.pk)
    assert [(e.signal, e.sender, e.kwargs) for e in sent] == [
        ("flow_started", CallAuthFlow, {"flow": flow, "request": request})
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(("ttl", "lasts"), [(60, 60), (600, 120), (None, 120)], ids=["ttl", "capped", "unset"])
def test_start_flow_lives_the_ttl_but_never_outlives_the_providers_numbers(
    fake: Any, clock: Clock, settings: Any, ttl: int | None, lasts: int
) -> None:
    if ttl is None:
        del settings.CALLAUTH_TTL
    else:
        settings.CALLAUTH_TTL = ttl
    flow = flows.start_flow(browser(), PHONE)
    assert flow.expires_at == T0 + timedelta(seconds=lasts)  # the fake's lifetime: 120 s


@pytest.mark.django_db
def test_start_flow_in_webhook_mode_sends_a_secret_url_and_stores_only_its_hash(
    fake: Any, clock: Clock, settings: Any
) -> None:
    settings.CALLAUTH_WEBHOOK_BASE_URL = "https://site.example/"
    flow = flows.start_flow(browser(), PHONE)
    [(phone, webhook_url)] = fake.starts
    assert phone == PHONE
    assert webhook_url is not None
    parts = urlsplit(webhook_url)
    assert (parts.scheme, parts.netloc, parts.query) == ("https", "site.example", "")
    prefix = f"/callauth/webhook/{flow.pk}/"
    assert parts.path.startswith(prefix) and parts.path.endswith("/")
    secret = parts.path[len(prefix) : -1]
    assert len(secret) == 43
    assert stored(flow).webhook_secret_hash == webhook_secrets.hash_secret(secret)
    assert secret not in str(CallAuthFlow.objects.filter(pk=flow.pk).values().get())
    assert flow.uses_webhook


@pytest.mark.django_db
def test_no_webhook_for_a_provider_without_webhooks(clock: Clock, settings: Any) -> None:
    settings.CALLAUTH_PROVIDER = "sandbox"
    settings.CALLAUTH_WEBHOOK_BASE_URL = "https://site.example"
    flow = flows.start_flow(browser(), PHONE)
    assert flow.webhook_secret_hash == ""
    assert flow.call_to.startswith("+7999000")
    assert flow.provider == "sandbox"


@pytest.mark.django_db(transaction=True)
def test_the_flow_is_committed_before_the_provider_is_asked(fake: Any, clock: Clock) -> None:
    seen = []

    def on_start(phone: str, webhook_url: str | None) -> None:
        # Autocommit outside any atomic block: a webhook racing this answer finds the row.
        seen.append(
            (connection.in_atomic_block, list(CallAuthFlow.objects.values_list("phone", "status", "provider_id")))
        )

    fake.on_start = on_start
    flows.start_flow(browser(), PHONE)
    assert seen == [(False, [(PHONE, FlowStatus.PENDING, "")])]


@pytest.mark.django_db
def test_start_again_with_the_same_phone_reuses_the_live_flow(fake: Any, clock: Clock, sent: list[Sent]) -> None:
    request = browser()
    first = flows.start_flow(request, PHONE)
    clock.advance(100)  # 20 seconds left: still enough to call
    again = flows.start_flow(request, "+79001234567")
    assert again.pk == first.pk
    assert len(fake.starts) == 1
    assert CallAuthFlow.objects.count() == 1
    assert [e.signal for e in sent] == ["flow_started"]


@pytest.mark.django_db
def test_no_reuse_when_too_little_time_is_left(fake: Any, clock: Clock, sent: list[Sent]) -> None:
    request = browser()
    first = flows.start_flow(request, PHONE)
    clock.advance(101)  # 19 seconds left
    second = flows.start_flow(request, PHONE)
    assert second.pk != first.pk
    assert len(fake.starts) == 2
    assert (stored(first).status, stored(first).failure_reason) == (FlowStatus.FAILED, FailureReason.CANCELLED)
    assert request.session[flows.SESSION_FLOW_KEY] == str(second.pk)


@pytest.mark.django_db
def test_start_with_a_different_phone_cancels_the_live_flow(fake: Any, clock: Clock, sent: list[Sent]) -> None:
    request = browser()
    first = flows.start_flow(request, PHONE)
    second = flows.start_flow(request, OTHER)
    assert second.pk != first.pk
    assert fake.starts == [(PHONE, None), (OTHER, None)]
    row = stored(first)
    assert (row.status, row.failure_reason) == (FlowStatus.FAILED, FailureReason.CANCELLED)
    assert stored(second).status == FlowStatus.PENDING
    assert request.session[flows.SESSION_FLOW_KEY] == str(second.pk)
    assert [(e.signal, e.kwargs) for e in sent] == [
        ("flow_started", {"flow": first, "request": request}),
        ("flow_failed", {"flow": first, "reason": FailureReason.CANCELLED}),
        ("flow_started", {"flow": second, "request": request}),
    ]


@pytest.mark.django_db
def test_a_live_flow_confirmed_while_the_next_one_starts_is_not_cancelled(
    fake: Any, clock: Clock, sent: list[Sent]
) -> None:
    request = browser()
    first = flows.start_flow(request, PHONE)
    # The call to the first number lands (another worker) while the provider hands out the second.
    fake.on_start = lambda phone, webhook_url: stored(first).confirm(PHONE) if phone == OTHER else None
    second = flows.start_flow(request, OTHER)
    assert (stored(first).status, stored(first).failure_reason) == (FlowStatus.CONFIRMED, "")
    assert request.session[flows.SESSION_FLOW_KEY] == str(second.pk)
    assert [(e.signal, e.kwargs["flow"]) for e in sent] == [("flow_started", first), ("flow_started", second)]


@pytest.mark.django_db
def test_a_confirmed_flow_is_neither_reused_nor_cancelled(fake: Any, clock: Clock) -> None:
    request = browser()
    first = flows.start_flow(request, PHONE)
    first.confirm(PHONE)
    second = flows.start_flow(request, PHONE)
    assert second.pk != first.pk
    assert len(fake.starts) == 2
    assert stored(first).status == FlowStatus.CONFIRMED


@pytest.mark.django_db
def test_another_browser_gets_its_own_flow(fake: Any, clock: Clock) -> None:
    mine = flows.start_flow(browser(), PHONE)
    theirs = flows.start_flow(browser(), PHONE)
    assert theirs.pk != mine.pk
    assert stored(mine).status == FlowStatus.PENDING
    assert len(fake.starts) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("error", [ProviderUnavailable(), ProviderRejected(), ProviderError()])
def test_provider_error_marks_the_flow_failed_and_is_raised(
    fake: Any, clock: Clock, sent: list[Sent], error: ProviderError
) -> None:
    fake.start_error = error
    request = browser()
    with pytest.raises(type(error)) as excinfo:
        flows.start_flow(request, PHONE)
    assert excinfo.value is error
    flow = CallAuthFlow.objects.get()
    assert (flow.status, flow.failure_reason, flow.call_to, flow.provider_id) == (
        FlowStatus.FAILED,
        FailureReason.PROVIDER_ERROR,
        "",
        "",
    )
    assert flow.finished_at == T0
    assert flows.SESSION_FLOW_KEY not in request.session
    assert [(e.signal, e.sender, e.kwargs) for e in sent] == [
        ("flow_failed", CallAuthFlow, {"flow": flow, "reason": FailureReason.PROVIDER_ERROR})
    ]


# -- flow_from_session ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", 12, None, ["x"], "' OR 1=1 --"]
)
def test_flow_from_session_refuses_junk(value: Any, flow_factory: FlowFactory) -> None:
    flow_factory()
    session = SessionStore()
    session[flows.SESSION_FLOW_KEY] = value
    assert flows.flow_from_session(session) is None


@pytest.mark.django_db
def test_flow_from_session_and_forget_flow(flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    session = SessionStore()
    assert flows.flow_from_session(session) is None
    session[flows.SESSION_FLOW_KEY] = str(flow.pk)
    assert flows.flow_from_session(session) == flow
    flows.forget_flow(session)
    assert flows.SESSION_FLOW_KEY not in session
    assert flows.flow_from_session(session) is None
    flows.forget_flow(session)  # twice is fine


# -- refresh_flow ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("interval", [3, 10], ids=["3s", "10s"])
def test_refresh_asks_check_at_most_once_per_interval(
    fake: Any, clock: Clock, settings: Any, flow_factory: FlowFactory, interval: int
) -> None:
    settings.CALLAUTH_CHECK_INTERVAL = interval
    flow = flow_factory()
    flows.refresh_flow(flow)
    assert fake.checks == ["id-1"]
    for _ in range(2 * interval - 1):
        clock.advance(0.5)
        flows.refresh_flow(flow)
    assert fake.checks == ["id-1"]
    clock.advance(0.5)  # ``interval`` seconds since the first check
    flows.refresh_flow(flow)
    assert fake.checks == ["id-1", "id-1"]
    assert stored(flow).last_checked_at == T0 + timedelta(seconds=interval)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("caller", "status", "reason", "signals"),
    [
        (PHONE, FlowStatus.CONFIRMED, "", [("flow_confirmed", None)]),
        (OTHER, FlowStatus.FAILED, FailureReason.PHONE_MISMATCH, [("flow_failed", FailureReason.PHONE_MISMATCH)]),
        (None, FlowStatus.PENDING, "", []),
    ],
    ids=["the_phone", "another_phone", "no_call_yet"],
)
def test_refresh_applies_what_check_reports(
    fake: Any,
    clock: Clock,
    sent: list[Sent],
    flow_factory: FlowFactory,
    caller: str | None,
    status: str,
    reason: str,
    signals: list[tuple[str, str | None]],
) -> None:
    flow = flow_factory()
    fake.caller = caller
    clock.advance(30)
    flows.refresh_flow(flow)
    row = stored(flow)
    assert (row.status, row.failure_reason, row.caller) == (status, reason, caller or "")
    assert row.confirmed_at == (T0 + timedelta(seconds=30) if status == FlowStatus.CONFIRMED else None)
    assert [(e.signal, e.kwargs.get("reason")) for e in sent] == signals
    assert all(e.kwargs["flow"] == flow for e in sent)


@pytest.mark.django_db
def test_refresh_survives_a_check_error_and_asks_again_later(
    fake: Any, clock: Clock, flow_factory: FlowFactory
) -> None:
    flow = flow_factory()
    fake.check_error = ProviderUnavailable()
    flows.refresh_flow(flow)
    assert stored(flow).status == FlowStatus.PENDING
    clock.advance(1)
    flows.refresh_flow(flow)
    assert len(fake.checks) == 1
    fake.check_error = None
    fake.caller = PHONE
    clock.advance(2)
    flows.refresh_flow(flow)
    assert len(fake.checks) == 2
    assert stored(flow).status == FlowStatus.CONFIRMED


@pytest.mark.django_db
def test_refresh_expires_a_late_flow_without_asking(
    fake: Any, clock: Clock, sent: list[Sent], flow_factory: FlowFactory
) -> None:
    flow = flow_factory()
    fake.caller = PHONE
    clock.advance(120)
    flows.refresh_flow(flow)
    assert fake.checks == []
    assert (flow.status, flow.finished_at) == (FlowStatus.EXPIRED, T0 + timedelta(seconds=120))
    assert [(e.signal, e.kwargs) for e in sent] == [("flow_failed", {"flow": flow, "reason": "expired"})]


@pytest.mark.django_db
def test_refresh_of_a_stale_copy_past_the_deadline_leaves_a_flow_that_ended_meanwhile(
    fake: Any, clock: Clock, sent: list[Sent], flow_factory: FlowFactory
) -> None:
    flow = flow_factory()
    stored(flow).confirm(PHONE)  # another worker confirmed it; this copy still says pending
    clock.advance(120)
    flows.refresh_flow(flow)
    assert (flow.status, stored(flow).status) == (FlowStatus.CONFIRMED, FlowStatus.CONFIRMED)
    assert fake.checks == []
    assert sent == []  # no flow_failed for a flow that did not expire


@pytest.mark.django_db
@pytest.mark.parametrize("status", [FlowStatus.CONFIRMED, FlowStatus.USED, FlowStatus.FAILED, FlowStatus.EXPIRED])
def test_refresh_leaves_finished_flows_alone(fake: Any, clock: Clock, status: str, flow_factory: FlowFactory) -> None:
    flow = flow_factory(status=status)
    clock.advance(10_000)
    flows.refresh_flow(flow)
    assert fake.checks == []
    assert stored(flow).status == status


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [{"provider_id": "", "call_to": ""}, {"provider": "no_longer_configured"}],
    ids=["no_provider_id_yet", "provider_gone"],
)
def test_refresh_does_not_check_a_flow_it_cannot_ask_about(
    fake: Any, clock: Clock, flow_factory: FlowFactory, fields: dict[str, str]
) -> None:
    flow = flow_factory(**fields)
    flows.refresh_flow(flow)
    assert fake.checks == []
    assert stored(flow).last_checked_at is None


@pytest.mark.django_db
def test_refresh_asks_the_provider_that_started_the_flow_not_the_configured_one(
    fake: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch, flow_factory: FlowFactory
) -> None:
    asked: list[str] = []

    def check(self: Any, provider_id: str) -> CallReport:
        asked.append(provider_id)
        return CallReport(caller=None, provider_id=provider_id)

    monkeypatch.setattr(TelefonIpProvider, "check", check)
    flow = flow_factory(provider="telefon_ip")
    flows.refresh_flow(flow)
    assert fake.checks == []
    assert asked == ["id-1"]


@pytest.mark.django_db
def test_refresh_never_checks_the_sandbox(
    settings: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch, flow_factory: FlowFactory
) -> None:
    settings.CALLAUTH_PROVIDER = "sandbox"
    asked = []
    monkeypatch.setattr(SandboxProvider, "check", lambda self, provider_id: asked.append(provider_id))
    flow = flow_factory(provider="sandbox")
    flows.refresh_flow(flow)
    assert asked == []
    assert stored(flow).status == FlowStatus.PENDING


@pytest.mark.django_db
def test_webhook_mode_flow_is_not_checked_before_a_webhook(fake: Any, clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"))
    for _ in range(10):
        flows.refresh_flow(flow)
        clock.advance(5)
    assert fake.checks == []
    assert stored(flow).last_checked_at is None
    flow.note_webhook()
    fake.caller = PHONE
    flows.refresh_flow(flow)
    assert fake.checks == ["id-1"]
    assert flow.status == FlowStatus.CONFIRMED


@pytest.mark.django_db
def test_webhook_in_time_verified_after_the_deadline_confirms(
    fake: Any, clock: Clock, flow_factory: FlowFactory
) -> None:
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"))
    clock.advance(119)
    flow.note_webhook()
    clock.advance(2)  # the browser's poll comes after the deadline
    fake.caller = PHONE
    flows.refresh_flow(flow)
    assert fake.checks == ["id-1"]
    assert (flow.status, flow.confirmed_at) == (FlowStatus.CONFIRMED, T0 + timedelta(seconds=121))


@pytest.mark.django_db
def test_webhook_in_time_but_check_sees_no_call_expires_after_the_deadline(
    fake: Any, clock: Clock, sent: list[Sent], flow_factory: FlowFactory
) -> None:
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"))
    clock.advance(100)
    flow.note_webhook()
    flows.refresh_flow(flow)  # in time, no call seen yet: still pending
    assert flow.status == FlowStatus.PENDING
    clock.advance(30)
    flows.refresh_flow(flow)
    assert len(fake.checks) == 2
    assert flow.status == FlowStatus.EXPIRED
    assert [(e.signal, e.kwargs) for e in sent] == [("flow_failed", {"flow": flow, "reason": "expired"})]


# -- apply_report -------------------------------------------------------------------


@pytest.mark.django_db
def test_apply_report_confirms_the_exact_phone(clock: Clock, sent: list[Sent], flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    flows.apply_report(flow, PHONE)
    assert (flow.status, flow.caller) == (FlowStatus.CONFIRMED, PHONE)
    assert [(e.signal, e.sender, e.kwargs) for e in sent] == [("flow_confirmed", CallAuthFlow, {"flow": flow})]


@pytest.mark.django_db
@pytest.mark.parametrize("caller", [OTHER, "89001234567", "79001234567", "+7900123456", "", "+79001234567 "])
def test_apply_report_any_other_caller_fails_the_flow(
    clock: Clock, sent: list[Sent], caller: str, flow_factory: FlowFactory
) -> None:
    flow = flow_factory()
    flows.apply_report(flow, caller)
    assert (flow.status, flow.failure_reason, flow.caller) == (FlowStatus.FAILED, FailureReason.PHONE_MISMATCH, caller)
    assert [(e.signal, e.kwargs) for e in sent] == [
        ("flow_failed", {"flow": flow, "reason": FailureReason.PHONE_MISMATCH})
    ]


@pytest.mark.django_db
def test_apply_report_late_expires(clock: Clock, sent: list[Sent], flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    clock.advance(120)
    flows.apply_report(flow, PHONE)
    assert (flow.status, flow.caller) == (FlowStatus.EXPIRED, "")
    assert [(e.signal, e.kwargs) for e in sent] == [("flow_failed", {"flow": flow, "reason": "expired"})]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [FlowStatus.CONFIRMED, FlowStatus.USED, FlowStatus.FAILED, FlowStatus.EXPIRED])
def test_apply_report_replayed_or_on_a_finished_flow_does_nothing(
    clock: Clock, sent: list[Sent], status: str, flow_factory: FlowFactory
) -> None:
    flow = flow_factory(status=status)
    flows.apply_report(flow, PHONE)
    flows.apply_report(flow, OTHER)
    assert stored(flow).status == status
    assert sent == []


# -- handle_webhook -----------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_with_verify_only_marks_the_flow_for_a_check(
    fake: Any, clock: Clock, settings: Any, sent: list[Sent], flow_factory: FlowFactory
) -> None:
    settings.CALLAUTH_WEBHOOK_VERIFY = True
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"))
    clock.advance(10)
    assert flows.handle_webhook(flow, CallReport(caller=PHONE, provider_id="id-1")) == "accepted: to be verified"
    row = stored(flow)
    assert (row.status, row.caller, row.webhook_received_at) == (FlowStatus.PENDING, "", T0 + timedelta(seconds=10))
    assert fake.checks == []  # the provider gets its answer at once; the poll asks
    assert sent == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("webhook_caller", "check_caller", "status", "reason"),
    [
        (PHONE, None, FlowStatus.PENDING, ""),  # forged: the provider never saw a call
        (PHONE, OTHER, FlowStatus.FAILED, FailureReason.PHONE_MISMATCH),
        (OTHER, OTHER, FlowStatus.FAILED, FailureReason.PHONE_MISMATCH),
    ],
    ids=["forged", "check_names_another_phone", "both_name_another_phone"],
)
def test_webhook_with_verify_is_decided_by_the_check(
    fake: Any,
    clock: Clock,
    settings: Any,
    flow_factory: FlowFactory,
    webhook_caller: str,
    check_caller: str | None,
    status: str,
    reason: str,
) -> None:
    settings.CALLAUTH_WEBHOOK_VERIFY = True
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"))
    assert flows.handle_webhook(flow, CallReport(caller=webhook_caller)) == "accepted: to be verified"
    assert (stored(flow).status, stored(flow).caller) == (FlowStatus.PENDING, "")  # its word alone decides nothing
    fake.caller = check_caller
    flows.refresh_flow(flow)
    assert fake.checks == ["id-1"]  # our stored id, not the webhook's
    assert (flow.status, flow.failure_reason, flow.caller) == (status, reason, check_caller or "")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("caller", "status", "reason", "signal"),
    [
        (PHONE, FlowStatus.CONFIRMED, "", "flow_confirmed"),
        (OTHER, FlowStatus.FAILED, FailureReason.PHONE_MISMATCH, "flow_failed"),
    ],
    ids=["own_phone", "another_phone"],
)
def test_webhook_without_verify_is_applied_directly(
    fake: Any,
    clock: Clock,
    settings: Any,
    sent: list[Sent],
    flow_factory: FlowFactory,
    caller: str,
    status: str,
    reason: str,
    signal: str,
) -> None:
    settings.CALLAUTH_WEBHOOK_VERIFY = False
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"))
    assert flows.handle_webhook(flow, CallReport(caller=caller, provider_id="id-1")) == "applied"
    assert (flow.status, flow.failure_reason, flow.caller) == (status, reason, caller)
    assert fake.checks == []
    assert [e.signal for e in sent] == [signal]


@pytest.mark.django_db
@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize(
    ("report", "outcome"),
    [
        (CallReport(caller=PHONE, provider_id="id-2"), "ignored: id mismatch"),
        (CallReport(caller=None, provider_id="id-1"), "ignored: no call reported"),
    ],
    ids=["another_provider_id", "no_caller"],
)
def test_webhook_naming_another_id_or_no_caller_is_ignored(
    clock: Clock, settings: Any, verify: bool, flow_factory: FlowFactory, report: CallReport, outcome: str
) -> None:
    settings.CALLAUTH_WEBHOOK_VERIFY = verify
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"))
    assert flows.handle_webhook(flow, report) == outcome
    row = stored(flow)
    assert (row.status, row.webhook_received_at) == (FlowStatus.PENDING, None)


@pytest.mark.django_db
@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("status", list(FlowStatus))  # a pending flow past its deadline; each finished one in time
def test_webhook_after_the_deadline_or_for_a_finished_flow_is_ignored(
    clock: Clock, settings: Any, sent: list[Sent], verify: bool, status: str, flow_factory: FlowFactory
) -> None:
    settings.CALLAUTH_WEBHOOK_VERIFY = verify
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"), status=status)
    clock.advance(120 if status == FlowStatus.PENDING else 0)
    assert flows.handle_webhook(flow, CallReport(caller=PHONE)) == ReportOutcome.IGNORED_NOT_PENDING
    row = stored(flow)
    assert (row.status, row.caller, row.webhook_received_at) == (status, flow.caller, None)
    assert sent == []


@pytest.mark.django_db
def test_webhook_before_the_start_answer_was_stored(
    fake: Any, clock: Clock, settings: Any, flow_factory: FlowFactory
) -> None:
    # The provider may call the webhook before our start request got its answer.
    settings.CALLAUTH_WEBHOOK_VERIFY = True
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"), provider_id="", call_to="")
    assert flows.handle_webhook(flow, CallReport(caller=PHONE, provider_id="id-1")) == "accepted: to be verified"
    flows.refresh_flow(flow)
    assert fake.checks == []  # nothing to ask about yet
    flow.set_started(call_to="+79995550001", provider_id="id-1")
    fake.caller = PHONE
    flows.refresh_flow(flow)
    assert fake.checks == ["id-1"]
    assert flow.status == FlowStatus.CONFIRMED


@pytest.mark.django_db
def test_an_outcome_reads_as_what_happened_in_a_log_line(flow_factory: FlowFactory) -> None:
    # The webhook views log the outcome with %s: the text, not "ReportOutcome.IGNORED_NO_CALL".
    outcome = flows.handle_webhook(flow_factory(), CallReport(caller=None))
    assert (outcome, str(outcome)) == (ReportOutcome.IGNORED_NO_CALL, "ignored: no call reported")


# -- handle_callback ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "vouched", "outcome"),
    [
        *[(status, True, ReportOutcome.IGNORED_NOT_PENDING) for status in FlowStatus if status != FlowStatus.PENDING],
        (FlowStatus.PENDING, False, "ignored: no call reported"),
    ],
)
def test_callback_for_a_finished_flow_or_without_a_call_is_ignored(
    clock: Clock, flow_factory: FlowFactory, status: str, vouched: bool, outcome: str
) -> None:
    flow = flow_factory(status=status)
    assert flows.handle_callback(flow, CallReport(caller=None, provider_id="id-1", vouched=vouched)) == outcome
    row = stored(flow)
    assert (row.status, row.webhook_received_at) == (status, None)


# -- simulate_call ------------------------------------------------------------------


@pytest.fixture
def sandbox(settings: Any) -> None:
    settings.CALLAUTH_PROVIDER = "sandbox"
    settings.CALLAUTH_WEBHOOK_BASE_URL = ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("caller", "status", "reason", "signal"),
    [
        (None, FlowStatus.CONFIRMED, "", "flow_confirmed"),  # None: from the flow's own phone
        (OTHER, FlowStatus.FAILED, FailureReason.PHONE_MISMATCH, "flow_failed"),
    ],
    ids=["own_phone", "another_phone"],
)
def test_simulate_call_decides_the_waiting_flow(
    sandbox: None, clock: Clock, sent: list[Sent], caller: str | None, status: str, reason: str, signal: str
) -> None:
    flow = flows.start_flow(browser(), PHONE)
    reached = flows.simulate_call(flow.call_to, caller)
    assert reached == flow
    assert reached is not None
    assert (reached.status, reached.failure_reason, reached.caller) == (status, reason, caller or PHONE)
    assert [e.signal for e in sent] == ["flow_started", signal]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "dialled"),
    [
        ({"provider": "sandbox"}, "+79990002222"),
        ({"provider": "telefon_ip"}, "+79990001111"),
        ({"provider": "sandbox", "status": FlowStatus.USED}, "+79990001111"),
    ],
    ids=["unknown_number", "real_provider_flow", "finished_flow"],
)
def test_simulate_call_reaching_no_live_sandbox_flow_writes_nothing(
    sandbox: None, clock: Clock, sent: list[Sent], flow_factory: FlowFactory, fields: dict[str, str], dialled: str
) -> None:
    flow_factory(call_to="+79990001111", **fields)
    before = snapshot()
    assert flows.simulate_call(dialled) is None
    assert snapshot() == before
    assert sent == []


@pytest.mark.django_db
def test_simulate_call_after_the_deadline_expires(sandbox: None, clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory(provider="sandbox", call_to="+79990001111")
    clock.advance(121)
    reached = flows.simulate_call("+79990001111")
    assert reached is not None
    assert reached.status == FlowStatus.EXPIRED
    assert stored(flow).status == FlowStatus.EXPIRED


@pytest.mark.django_db
def test_simulate_call_reaches_the_newest_flow_with_that_number(
    sandbox: None, clock: Clock, flow_factory: FlowFactory
) -> None:
    older = flow_factory(provider="sandbox", call_to="+79990001111", phone=OTHER)
    newer = flow_factory(provider="sandbox", call_to="+79990001111", created_at=T0 + timedelta(seconds=1))
    assert flows.simulate_call("+79990001111") == newer
    assert stored(newer).status == FlowStatus.CONFIRMED
    assert stored(older).status == FlowStatus.PENDING


# -- what checks may cost (invariant 8) -------------------------------------------------


def poll_every(flow: CallAuthFlow, clock: Clock, seconds: float, until: float) -> None:
    """A browser polling the status every ``seconds`` until ``until`` seconds after T0."""
    while clock.now < T0 + timedelta(seconds=until):
        flows.refresh_flow(stored(flow))
        clock.advance(seconds)


@pytest.mark.django_db
def test_a_webhook_in_time_gets_a_short_grace_not_forever(fake: Any, clock: Clock, flow_factory: FlowFactory) -> None:
    # The webhook came in time, and every check fails: polls past the deadline stop asking
    # after the grace, and the flow expires.
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"))
    clock.advance(110)
    flow.note_webhook()
    fake.check_error = ProviderUnavailable()
    poll_every(flow, clock, 1, until=300)
    deadline = 120 + refresh.VERIFY_GRACE_SECONDS
    assert len(fake.checks) == len(range(110, deadline, 3)) == 9
    assert stored(flow).status == FlowStatus.EXPIRED


@pytest.mark.django_db
def test_checks_per_flow_are_capped_whatever_happens(fake: Any, clock: Clock, flow_factory: FlowFactory) -> None:
    # A webhook at the last second and a failing check: at one check per interval through
    # the grace, the cap is what stops it.
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s"))
    flow.note_webhook()
    fake.check_error = ProviderUnavailable()
    poll_every(flow, clock, 0.5, until=300)
    assert flows.max_checks(120) == 41  # ceil(120 / 3) + 1
    assert len(fake.checks) == 41
    assert stored(flow).checks_made == 41


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["webhook", "callback"])
def test_presses_of_i_have_called_ask_a_bounded_few_checks(
    fake: Any, clock: Clock, flow_factory: FlowFactory, mode: str
) -> None:
    # A press every second for the flow's whole life, and no report ever comes.
    fake.awaits_callback = mode == "callback"
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s") if mode == "webhook" else "")
    asked_at = []
    while clock.now < T0 + timedelta(seconds=120):
        before = len(fake.checks)
        flows.refresh_flow(stored(flow), user_says_called=True)
        asked_at += [clock.now] * (len(fake.checks) - before)
        clock.advance(1)
    assert asked_at == [T0, T0 + timedelta(seconds=3), T0 + timedelta(seconds=6)]
    assert refresh.CALLED_CHECKS == 3
    assert (stored(flow).checks_made, stored(flow).called_checks) == (3, 3)


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["webhook", "callback"])
def test_a_report_after_the_presses_ran_out_is_still_checked(
    fake: Any, clock: Clock, flow_factory: FlowFactory, mode: str
) -> None:
    fake.awaits_callback = mode == "callback"
    flow = flow_factory(webhook_secret_hash=webhook_secrets.hash_secret("s") if mode == "webhook" else "")
    for _ in range(5):
        flows.refresh_flow(stored(flow), user_says_called=True)
        clock.advance(3)
    assert len(fake.checks) == 3
    fake.caller = PHONE
    report = CallReport(caller=None, provider_id="id-1", vouched=True)
    if mode == "webhook":
        flows.handle_webhook(stored(flow), CallReport(caller=PHONE, provider_id="id-1"), fake())
    else:
        flows.handle_callback(stored(flow), report)
    flows.refresh_flow(stored(flow), user_says_called=True)
    assert len(fake.checks) == 4
    assert stored(flow).status == FlowStatus.CONFIRMED


# -- account-wide callbacks: anyone may send one (invariants 2, 3, 8) ---------------------------

CALLBACK = CallReport(caller=None, provider_id="id-1", vouched=True)


@pytest.fixture
def callback_flow(fake: Any, flow_factory: FlowFactory) -> CallAuthFlow:
    """A flow waiting for the provider's account-wide callback (sms.ru's, registered by hand)."""
    fake.awaits_callback = True
    return flow_factory()


@pytest.mark.django_db
def test_a_callback_the_check_contradicts_costs_no_more_checks(
    fake: Any, clock: Clock, callback_flow: CallAuthFlow
) -> None:
    flows.handle_callback(callback_flow, CALLBACK)  # no call was made
    poll_every(callback_flow, clock, 1, until=60)
    assert fake.checks == ["id-1"]
    row = stored(callback_flow)
    assert (row.status, row.webhook_received_at) == (FlowStatus.PENDING, None)  # waiting again
    # Only a new callback asks again, once; then the flow waits again.
    flows.handle_callback(row, CALLBACK)
    fake.caller = PHONE
    poll_every(callback_flow, clock, 1, until=70)
    assert fake.checks == ["id-1", "id-1"]
    assert stored(callback_flow).status == FlowStatus.CONFIRMED


@pytest.mark.django_db
def test_a_callback_during_a_check_is_checked_in_its_turn(
    fake: Any, clock: Clock, callback_flow: CallAuthFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check under way answers "no call yet" while the real callback arrives: that one stays.
    def check_as_the_callback_comes(self: Any, provider_id: str) -> CallReport:
        type(self).checks.append(provider_id)
        clock.advance(1)
        flows.handle_callback(stored(callback_flow), CALLBACK)
        return CallReport(caller=None, provider_id=provider_id)

    flows.handle_callback(callback_flow, CALLBACK)
    with monkeypatch.context() as patched:
        patched.setattr(fake, "check", check_as_the_callback_comes)
        flows.refresh_flow(stored(callback_flow))
    assert stored(callback_flow).webhook_received_at == T0 + timedelta(seconds=1)
    fake.caller = PHONE
    poll_every(callback_flow, clock, 1, until=10)
    assert fake.checks == ["id-1", "id-1"]
    assert stored(callback_flow).status == FlowStatus.CONFIRMED


@pytest.mark.django_db
def test_a_callback_that_a_check_cannot_answer_is_asked_about_again(
    fake: Any, clock: Clock, callback_flow: CallAuthFlow
) -> None:
    # An unanswered check contradicts nothing: the provider is asked again after the interval.
    flows.handle_callback(callback_flow, CALLBACK)
    fake.check_error = ProviderUnavailable()
    poll_every(callback_flow, clock, 1, until=4)
    assert stored(callback_flow).webhook_received_at == T0
    fake.check_error, fake.caller = None, PHONE
    poll_every(callback_flow, clock, 1, until=7)
    assert fake.checks == ["id-1"] * 3
    assert stored(callback_flow).status == FlowStatus.CONFIRMED


@pytest.mark.django_db
def test_a_callback_never_moves_the_deadline(fake: Any, clock: Clock, callback_flow: CallAuthFlow) -> None:
    # An early callback, then a call after the deadline: the provider is not asked, nothing confirms.
    clock.advance(10)
    flows.handle_callback(callback_flow, CALLBACK)
    clock.advance(111)  # 1 s past the deadline
    fake.caller = PHONE
    flows.refresh_flow(stored(callback_flow), user_says_called=True)
    assert fake.checks == []
    assert stored(callback_flow).status == FlowStatus.EXPIRED


@pytest.mark.django_db
def test_a_check_after_a_callback_answered_past_the_deadline_confirms_nothing(
    fake: Any, clock: Clock, callback_flow: CallAuthFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Asked a second before the deadline, the provider answers two seconds later: too late,
    # whenever the callback came (only a per-flow webhook's arrival vouches for the time).
    def slow_check(self: Any, provider_id: str) -> CallReport:
        type(self).checks.append(provider_id)
        clock.advance(2)
        return CallReport(caller=PHONE, provider_id=provider_id)

    flows.handle_callback(callback_flow, CALLBACK)
    clock.advance(119)
    monkeypatch.setattr(fake, "check", slow_check)
    flows.refresh_flow(stored(callback_flow))
    assert fake.checks == ["id-1"]
    assert stored(callback_flow).status == FlowStatus.EXPIRED


@pytest.mark.django_db
def test_a_failed_start_keeps_the_browsers_live_flow(fake: Any, clock: Clock, sent: list[Sent]) -> None:
    request = browser()
    live = flows.start_flow(request, PHONE)
    fake.start_error = ProviderUnavailable()
    with pytest.raises(ProviderUnavailable):
        flows.start_flow(request, OTHER)
    assert stored(live).status == FlowStatus.PENDING
    assert flows.flow_from_session(request.session) == live
    assert [e.kwargs.get("reason") for e in sent if e.signal == "flow_failed"] == [FailureReason.PROVIDER_ERROR]


@pytest.mark.django_db
def test_a_call_from_another_phone_is_a_failed_login_for_axes_and_the_like(
    fake: Any, clock: Clock, flow_factory: FlowFactory
) -> None:
    failures: list[dict[str, Any]] = []

    def receiver(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
        failures.append({"credentials": credentials, "request": request})

    poll = RequestFactory().get("/callauth/status/")
    user_login_failed.connect(receiver)
    try:
        fake.caller = OTHER
        flows.refresh_flow(flow_factory(), request=poll)
    finally:
        user_login_failed.disconnect(receiver)
    assert failures == [{"credentials": {"callauth_phone": PHONE}, "request": poll}]


@pytest.mark.django_db
def test_a_failing_signal_receiver_is_logged_and_changes_nothing(
    fake: Any, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("project bug")

    signals.flow_started.connect(broken)
    try:
        flow = flows.start_flow(browser(), PHONE)
    finally:
        signals.flow_started.disconnect(broken)
    assert stored(flow).status == FlowStatus.PENDING
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.name == "django.dispatch"
    assert record.exc_info is not None and str(record.exc_info[1]) == "project bug"


@pytest.mark.django_db
def test_log_lines_carry_masked_phones_only(fake: Any, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    fake.caller = OTHER
    flows.refresh_flow(flows.start_flow(browser(), PHONE))
    lines = [r.getMessage() for r in caplog.records if r.name == "django_callauth"]
    assert "call came from +7 900 ***-**-21, not from +7 900 ***-**-67" in "\n".join(lines)
    assert not [line for line in lines if PHONE in line or OTHER in line]


@pytest.mark.django_db
def test_the_webhook_secret_never_reaches_a_debug_page(
    fake: Any, clock: Clock, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unexpected error while the plaintext secret is in hand: Django's error page and
    # error mails list every frame's locals, and must show it as hidden.
    settings.CALLAUTH_WEBHOOK_BASE_URL = "https://site.example"
    monkeypatch.setattr(webhook_secrets, "make_secret", lambda: "PLAINTEXT-SECRET-42")

    def explode(phone: str, webhook_url: str | None) -> None:
        raise RuntimeError("provider library bug")

    fake.on_start = explode
    request = browser()
    try:
        flows.start_flow(request, PHONE)
    except RuntimeError:
        report = ExceptionReporter(request, *sys.exc_info())
    frames = report.get_traceback_data()["frames"]
    shown = {f"{frame['function']}.{name}": str(value) for frame in frames for name, value in frame["vars"]}
    assert shown["start_new.secret"] == shown["explode.webhook_url"] == "'********************'"
    assert not [name for name, value in shown.items() if "PLAINTEXT-SECRET-42" in value]
