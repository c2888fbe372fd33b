"""Races proven on PostgreSQL with real threads (docs/security.rst, invariant 4).

Each thread has its own database connection and commits for real (``transactional_db``):
no wrapping transaction hides a race. SQLite has no row locks, so these are skipped there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from django_callauth import signals
from django_callauth.models import CallAuthFlow, CallAuthPhone, FlowStatus
from django_callauth.providers.base import CallAuthProvider, CallReport, StartedCall
from tests.helpers import PHONE, FlowFactory, client_holding, tabs_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released at once; return results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # surfaced by the assertions below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_fifty_concurrent_finishes_log_in_exactly_once(flow_factory: FlowFactory) -> None:
    user = get_user_model().objects.create_user(username="alice")
    CallAuthPhone.objects.create(user=user, phone=PHONE)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    tabs = tabs_of(client_holding(flow), 50)
    logins: list[Any] = []
    signals.logged_in.connect(lambda **kw: logins.append(kw["user"].pk), weak=False, dispatch_uid="race")
    try:
        responses = run_together(50, lambda i: tabs[i].post("/callauth/complete/", HTTP_ACCEPT="application/json"))
    finally:
        signals.logged_in.disconnect(dispatch_uid="race")

    assert not [r for r in responses if isinstance(r, BaseException)]
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert logins == [user.pk]
    losers = [r.json() for r in responses if r.status_code != 200]
    # The losers either saw the flow already used, or the session already logged in
    # and the flow key gone: both clear 4xx, never a second login or a 500.
    assert {body["error"] for body in losers} <= {"already_used", "no_flow"}
    assert all(r.status_code in (409, 400) for r in responses if r.status_code != 200)
    flow.refresh_from_db()
    assert flow.status == FlowStatus.USED and flow.user_id == user.pk


def test_concurrent_webhooks_confirm_once(settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_PROVIDER = "telefon_ip"
    settings.CALLAUTH_TELEFON_IP_TOKEN = "tok"
    settings.CALLAUTH_WEBHOOK_VERIFY = False
    from django_callauth.guards import webhook_secrets

    secret = webhook_secrets.make_secret()
    flow = flow_factory(
        provider="telefon_ip", provider_id="122760", webhook_secret_hash=webhook_secrets.hash_secret(secret)
    )
    confirmations: list[Any] = []
    signals.flow_confirmed.connect(lambda **kw: confirmations.append(kw["flow"].pk), weak=False, dispatch_uid="wh")
    url = f"/callauth/webhook/{flow.pk}/{secret}/?success=True&phone=89001234567&id=122760"
    try:
        responses = run_together(20, lambda i: Client().get(url))
    finally:
        signals.flow_confirmed.disconnect(dispatch_uid="wh")

    assert [r.status_code for r in responses] == [200] * 20
    assert confirmations == [flow.pk]
    flow.refresh_from_db()
    assert flow.status == FlowStatus.CONFIRMED and flow.caller == PHONE


class CountingProvider(CallAuthProvider):
    """Reports every call from the flow's phone, counting how often it was asked."""

    name = "counting"
    checks = 0
    lock = threading.Lock()

    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        return StartedCall(call_to="+79990002222", provider_id="c-1")

    def check(self, provider_id: str) -> CallReport:
        with CountingProvider.lock:
            CountingProvider.checks += 1
        return CallReport(caller=None, provider_id=provider_id)


def test_concurrent_polls_ask_the_provider_once_per_interval(settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_PROVIDER = "tests.test_concurrency.CountingProvider"
    settings.CALLAUTH_CHECK_INTERVAL = 60
    settings.CALLAUTH_POLL_INTERVAL = 0.01  # 30 tabs at once: more than slow_down lets through at 1 s
    CountingProvider.checks = 0
    flow = flow_factory(provider="counting", provider_id="c-1")
    tabs = tabs_of(client_holding(flow), 30)

    responses = run_together(30, lambda i: tabs[i].get("/callauth/status/", HTTP_ACCEPT="application/json"))

    assert [r.status_code for r in responses] == [200] * 30
    assert {r.json()["status"] for r in responses} == {"pending"}
    assert CountingProvider.checks == 1


def test_concurrent_first_logins_of_a_new_phone_make_one_account(settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_SIGNUP = True
    flows = [flow_factory(status=FlowStatus.CONFIRMED) for _ in range(10)]
    browsers = [client_holding(flow) for flow in flows]

    responses = run_together(10, lambda i: browsers[i].post("/callauth/complete/", HTTP_ACCEPT="application/json"))

    assert not [r for r in responses if isinstance(r, BaseException)]
    assert [r.status_code for r in responses] == [200] * 10
    assert CallAuthPhone.objects.filter(phone=PHONE).count() == 1
    owner = CallAuthPhone.objects.get(phone=PHONE).user_id
    assert set(CallAuthFlow.objects.values_list("user_id", flat=True)) == {owner}
    assert get_user_model().objects.count() == 1


# -- cost limits under concurrency (invariant 8) ------------------------------------------


def start_status(client: Client, phone: str = PHONE) -> int:
    return client.post("/callauth/start/", {"phone": phone}, HTTP_ACCEPT="application/json").status_code


def test_concurrent_starts_of_one_browser_bill_one_start() -> None:
    browser = Client()
    session = browser.session
    session["visited"] = True
    session.save()
    browser.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    tabs = tabs_of(browser, 20)
    results = run_together(20, lambda i: start_status(tabs[i]))
    assert sorted(results) == [201] + [409] * 19
    assert CallAuthFlow.objects.count() == 1


def test_concurrent_starts_of_one_phone_from_many_addresses_bill_three() -> None:
    results = run_together(20, lambda i: start_status(Client(REMOTE_ADDR=f"198.51.100.{i}")))
    assert sorted(results) == [201] * 3 + [429] * 17
    assert CallAuthFlow.objects.count() == 3


def test_a_concurrent_burst_from_one_address_bills_ten() -> None:
    results = run_together(30, lambda i: start_status(Client(), f"+7900{i:07d}"))
    assert sorted(results) == [201] * 10 + [429] * 20
    assert CallAuthFlow.objects.count() == 10


# -- linking phones ------------------------------------------------------------------------------


def confirmed_link_flow(user: Any, flow_factory: FlowFactory) -> Client:
    """A browser of ``user`` holding a confirmed flow adding PHONE."""
    client = Client()
    client.force_login(user)
    flow = flow_factory(purpose="link", user=user, status=FlowStatus.CONFIRMED, confirmed_at=timezone.now())
    session = client.session
    session["_callauth_link_flow_id"] = str(flow.pk)
    session.save()
    return client


def test_two_accounts_finishing_links_of_one_phone_at_once_link_it_once(flow_factory: FlowFactory) -> None:
    users = [get_user_model().objects.create_user(username=f"user{i}") for i in range(10)]
    browsers = [confirmed_link_flow(user, flow_factory) for user in users]
    results = run_together(
        10, lambda i: browsers[i].post("/callauth/phones/verify/complete/", HTTP_ACCEPT="application/json")
    )
    assert sorted(r.status_code for r in results) == [200] + [409] * 9
    assert {r.json().get("error") for r in results if r.status_code == 409} == {"phone_taken"}
    assert CallAuthPhone.objects.filter(phone=PHONE).count() == 1


def test_removing_two_phones_at_once_keeps_the_last_way_in() -> None:
    user = get_user_model().objects.create_user(username="passwordless")  # no usable password
    links = [CallAuthPhone.objects.create(user=user, phone=p) for p in (PHONE, "+79007654321")]
    browsers = []
    for _ in links:
        client = Client()
        client.force_login(user)
        browsers.append(client)
    results = run_together(
        2,
        lambda i: browsers[i].post(f"/callauth/phones/{links[i].pk}/remove/", HTTP_ACCEPT="application/json"),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    assert CallAuthPhone.objects.filter(user=user).count() == 1


def test_concurrent_starts_of_one_phone_on_smsc_start_one_flow(smsc: Any, fake_smsc: Any) -> None:
    """SMSC's callback names only the caller: two live flows of one phone would share her call."""
    results = run_together(10, lambda i: start_status(Client(REMOTE_ADDR=f"198.51.100.{i}")))
    assert sorted(results)[0] == 201 and set(sorted(results)[1:]) <= {429, 503}, results
    assert [r.action for r in fake_smsc.requests] == ["sys/wait_call.php"]
    assert CallAuthFlow.objects.filter(provider="smsc", status=FlowStatus.PENDING).count() == 1
