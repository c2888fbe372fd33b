"""Adding a phone to an account by a call, and removing one (pages and JSON).

Linking never logs anyone in or out, a link flow never finishes as a login (nor the
reverse), and whose a taken phone is, is never said. The races are in test_concurrency.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY, user_logged_in
from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory
from django.utils import timezone

from django_callauth.adapter import CallAuthAdapter
from django_callauth.flows import SESSION_KEYS, linking
from django_callauth.models import CallAuthFlow, CallAuthPhone, FlowPurpose, FlowStatus
from tests.helpers import (
    JSON,
    OTHER_PHONE,
    PHONE,
    Clock,
    FlowFactory,
    SignalLog,
    assert_json_error,
    complete,
    logged_in_user,
    page_forms,
    phones_of,
    sandbox_confirm,
    url,
)

pytestmark = pytest.mark.django_db

WINDOW = 300  # CALLAUTH_REAUTHENTICATION_TIMEOUT, pinned in tests/settings.py


@pytest.fixture
def browser(client: Client, alice: Any) -> Client:
    client.force_login(alice)
    return client


class NoLinkingAdapter(CallAuthAdapter):
    def may_link_phone(self, request: Any, user: Any, phone: str) -> bool:
        return False


def add(client: Client, phone: str = PHONE, **headers: Any) -> Any:
    return client.post(url("phone_add"), {"phone": phone}, **{**JSON, **headers})


def call_and_finish(client: Client) -> Any:
    assert client.post(url("link_sandbox_call"), **JSON).json()["status"] == "confirmed"
    return client.post(url("link_complete"), **JSON)


# -- adding --------------------------------------------------------------------------------


def test_a_phone_is_added_by_a_call_and_nobody_is_logged_in_or_out(
    browser: Client, alice: Any, sent: SignalLog
) -> None:
    logins: list[Any] = []
    user_logged_in.connect(receiver := lambda **kw: logins.append(kw["user"]))
    try:
        started = add(browser)
        assert started.status_code == 201
        assert started.json()["complete_url"] == url("link_complete")
        response = call_and_finish(browser)
    finally:
        user_logged_in.disconnect(receiver)
    assert response.status_code == 200
    assert response.json() == {"phone": PHONE, "redirect": url("phones")}
    assert phones_of(alice) == [PHONE]
    assert logged_in_user(browser) == str(alice.pk)
    assert logins == []
    assert [(event.kwargs["user"], event.kwargs["phone"]) for event in sent.of("phone_linked")] == [(alice, PHONE)]
    assert browser.get(url("phones"), **JSON).json()["phones"][0]["phone"] == PHONE


def test_the_html_pages_walk_through_it(browser: Client, alice: Any) -> None:
    page = browser.get(url("phones"))
    assert page.status_code == 200 and "No phone can log in to your account yet." in page.content.decode()
    assert browser.post(url("phone_add"), {"phone": "8 900 123-45-67"})["Location"] == url("link_challenge")
    challenge = browser.get(url("link_challenge")).content.decode()
    assert f'action="{url("link_complete")}"' in challenge
    browser.post(url("link_sandbox_call"))
    finished = browser.post(url("link_complete"))
    assert finished["Location"] == url("phones")
    assert "+7 900 123-45-67 was added to your account." in browser.get(url("phones")).content.decode()
    assert phones_of(alice) == [PHONE]


def test_a_phone_of_another_account_is_refused_without_saying_whose(
    browser: Client, alice: Any, django_user_model: Any
) -> None:
    bob = django_user_model.objects.create_user(username="bob-the-owner")
    CallAuthPhone.objects.create(user=bob, phone=PHONE)
    assert add(browser).status_code == 201  # the same answer as for a free phone: no enumeration
    response = call_and_finish(browser)
    assert_json_error(response, 409, "phone_taken")
    assert "bob" not in response.content.decode()
    assert phones_of(alice) == [] and phones_of(bob) == [PHONE]
    assert CallAuthFlow.objects.get().failure_reason == "phone_taken"


def test_adding_ones_own_dormant_phone_again_lets_it_log_in_again(browser: Client, alice: Any) -> None:
    # Logged in another way, the owner proves the silent phone is still theirs.
    long_ago = timezone.now() - timedelta(days=730)
    CallAuthPhone.objects.create(user=alice, phone=PHONE, created_at=long_ago, last_login_at=long_ago)
    stranger = Client()
    sandbox_confirm(stranger)
    assert_json_error(complete(stranger), 403, "phone_dormant")
    add(browser)
    assert call_and_finish(browser).status_code == 200
    assert CallAuthPhone.objects.get().last_login_at == long_ago  # no login by call happened
    later = Client()
    sandbox_confirm(later)
    assert complete(later).status_code == 200
    assert later.session[SESSION_KEY] == str(alice.pk)


def test_the_adapter_decides_who_may_link(browser: Client, alice: Any, settings: Any) -> None:
    settings.CALLAUTH_ADAPTER = "tests.test_linking.NoLinkingAdapter"
    add(browser)
    assert_json_error(call_and_finish(browser), 403, "not_allowed")
    assert phones_of(alice) == []


def test_anonymous_visitors_are_sent_to_log_in(client: Client) -> None:
    assert_json_error(client.get(url("phones"), **JSON), 401, "login_required")
    assert_json_error(add(client), 401, "login_required")
    assert_json_error(client.post(url("phone_remove", link_id=1), **JSON), 401, "login_required")  # not "again"
    assert client.get(url("phones"))["Location"].startswith("/login/?next=")


def test_a_link_finished_by_someone_else_logged_in_later_is_refused(
    browser: Client, alice: Any, django_user_model: Any
) -> None:
    add(browser)
    browser.post(url("link_sandbox_call"), **JSON)
    mallory = django_user_model.objects.create_user(username="mallory")
    flow_id = browser.session[SESSION_KEYS[FlowPurpose.LINK]]
    browser.force_login(mallory)  # a new session: the flow went with the old one
    assert_json_error(browser.post(url("link_complete"), **JSON), 400, "no_flow")
    session = browser.session
    session[SESSION_KEYS[FlowPurpose.LINK]] = flow_id  # even if the flow were carried over
    session.save()
    assert_json_error(browser.post(url("link_complete"), **JSON), 400, "no_flow")
    assert phones_of(mallory) == [] and phones_of(alice) == []


def test_adding_with_a_json_body_that_is_not_an_object_is_refused(browser: Client) -> None:
    response = browser.post(url("phone_add"), "[1]", content_type="application/json", **JSON)
    assert_json_error(response, 400, "invalid_request")
    assert CallAuthFlow.objects.count() == 0


def test_an_invalid_phone_is_refused_on_the_phones_page(browser: Client) -> None:
    assert_json_error(add(browser, "12345"), 400, "invalid_phone")  # its words: test_phones.py, test_errors.py
    page = browser.post(url("phone_add"), {"phone": "12345"})
    assert page.status_code == 400
    html = page.content.decode()
    assert 'id="callauth-phone-error"' in html and 'value="12345"' in html  # the error, and the phone to correct
    assert CallAuthFlow.objects.count() == 0


def test_finishing_before_the_call_says_so_and_adds_nothing(browser: Client, alice: Any) -> None:
    add(browser)
    assert_json_error(browser.post(url("link_complete"), **JSON), 409, "not_confirmed")
    assert CallAuthFlow.objects.get().status == FlowStatus.PENDING
    assert phones_of(alice) == []
    assert call_and_finish(browser).status_code == 200  # the call, then the same button, adds it


def test_a_link_flow_is_finished_once(alice: Any, flow_factory: FlowFactory) -> None:
    # Two finishes that both saw the flow confirmed: the second finds it claimed already.
    flow = flow_factory(purpose=FlowPurpose.LINK, user=alice, status=FlowStatus.CONFIRMED)
    request = RequestFactory().post(url("link_complete"))
    request.user = alice
    assert linking.link_phone(request, flow) is linking.LinkOutcome.LINKED
    assert linking.link_phone(request, flow) is linking.LinkOutcome.NOT_CONFIRMED
    assert CallAuthFlow.objects.get().status == FlowStatus.USED
    assert phones_of(alice) == [PHONE]


def test_adding_phones_counts_against_the_same_limits(browser: Client) -> None:
    for _ in range(3):  # three logins for the phone, from three other browsers
        assert Client().post(url("start"), {"phone": PHONE}, **JSON).status_code == 201
    assert_json_error(add(browser), 429, "rate_limited")


# -- a link is never a login, a login never a link ----------------------------------------------


def test_a_confirmed_link_flow_cannot_log_in(browser: Client) -> None:
    add(browser)
    browser.post(url("link_sandbox_call"), **JSON)
    browser.logout()
    assert_json_error(complete(browser), 400, "no_flow")
    flow = CallAuthFlow.objects.get()
    assert flow.status == FlowStatus.CONFIRMED
    assert flow.claim_for_login() is False


def test_a_confirmed_login_flow_cannot_add_a_phone(client: Client, alice: Any) -> None:
    flow = sandbox_confirm(client, OTHER_PHONE)
    client.force_login(alice)
    session = client.session
    session[SESSION_KEYS[FlowPurpose.LINK]] = str(flow.pk)  # planted where a link flow would be
    session.save()
    assert_json_error(client.post(url("link_complete"), **JSON), 400, "no_flow")
    assert flow.claim_for_link() is False
    assert phones_of(alice) == []


# -- removing -----------------------------------------------------------------------------------


def test_a_phone_is_removed(browser: Client, alice: Any, sent: SignalLog) -> None:
    link = CallAuthPhone.objects.create(user=alice, phone=PHONE)
    response = browser.post(url("phone_remove", link_id=link.pk), **JSON)
    assert response.json() == {"removed": PHONE}
    assert phones_of(alice) == []
    assert [(event.kwargs["user"], event.kwargs["phone"]) for event in sent.of("phone_removed")] == [(alice, PHONE)]


def test_the_last_way_to_log_in_is_kept(client: Client, django_user_model: Any) -> None:
    caller = django_user_model.objects.create_user(username="+79001234567")  # signed up by call: no password
    first = CallAuthPhone.objects.create(user=caller, phone=PHONE)
    second = CallAuthPhone.objects.create(user=caller, phone=OTHER_PHONE)
    client.force_login(caller)
    assert client.post(url("phone_remove", link_id=second.pk), **JSON).status_code == 200
    assert_json_error(client.post(url("phone_remove", link_id=first.pk), **JSON), 409, "last_login_method")
    assert phones_of(caller) == [PHONE]


def test_someone_elses_phone_cannot_be_removed(browser: Client, django_user_model: Any) -> None:
    bob = django_user_model.objects.create_user(username="bob")
    link = CallAuthPhone.objects.create(user=bob, phone=PHONE)
    assert_json_error(browser.post(url("phone_remove", link_id=link.pk), **JSON), 404, "not_found")
    assert phones_of(bob) == [PHONE]


# -- a recent login (invariant 18; the attacks are in test_security_session_theft) ---------------


@pytest.fixture
def stale(clock: Clock, browser: Client) -> Client:
    """alice's browser, logged in (at T0) longer ago than the re-authentication window."""
    clock.advance(WINDOW)
    return browser


def test_adding_needs_a_recent_login_before_the_body_is_read(stale: Client) -> None:
    assert_json_error(add(stale), 401, "reauthentication_required")
    response = stale.post(url("phone_add"), "[1]", content_type="application/json", **JSON)
    assert_json_error(response, 401, "reauthentication_required")
    assert CallAuthFlow.objects.count() == 0


def test_a_stale_phones_page_offers_to_log_in_again_instead_of_changes(stale: Client, alice: Any) -> None:
    CallAuthPhone.objects.create(user=alice, phone=PHONE)
    CallAuthPhone.objects.create(user=alice, phone=OTHER_PHONE)
    page = stale.get(url("phones"))
    assert page.status_code == 200
    forms = [(form.action, form.fields) for form in page_forms(page.content.decode())]
    assert forms == [
        (url("start"), {"phone": PHONE, "next": url("phones")}),
        (url("start"), {"phone": OTHER_PHONE, "next": url("phones")}),
    ]
    assert f'href="/login/?next={url("phones")}"' in page.content.decode()
    assert stale.get(url("phones"), **JSON).json()["phones"][1]["phone"] == OTHER_PHONE  # reading needs no new login


def test_a_stale_page_without_phones_offers_the_sites_login(stale: Client, settings: Any) -> None:
    settings.LOGIN_URL = "/accounts/login/"
    page = stale.post(url("phone_add"), {"phone": OTHER_PHONE})
    assert page.status_code == 401
    assert page_forms(page.content.decode()) == []
    assert f'href="/accounts/login/?next={url("phones")}"' in page.content.decode()


def test_a_recent_phones_page_offers_the_changes(browser: Client, alice: Any) -> None:
    link = CallAuthPhone.objects.create(user=alice, phone=PHONE)
    forms = [(form.action, form.fields) for form in page_forms(browser.get(url("phones")).content.decode())]
    assert forms == [(url("phone_remove", link_id=link.pk), {}), (url("phone_add"), {"phone": ""})]


def test_a_link_started_in_the_window_may_finish_after_it(clock: Clock, browser: Client, alice: Any) -> None:
    clock.advance(WINDOW - 1)
    assert add(browser).status_code == 201
    clock.advance(30)  # the number lives on; the login is now too old to start another change
    assert call_and_finish(browser).status_code == 200
    assert phones_of(alice) == [PHONE]
    assert_json_error(add(browser, OTHER_PHONE), 401, "reauthentication_required")


def test_the_pages_name_the_account_the_phone_is_added_to(client: Client, django_user_model: Any) -> None:
    user = django_user_model.objects.create_user(username="<i>eve</i>")
    client.force_login(user)
    escaped = "<strong>&lt;i&gt;eve&lt;/i&gt;</strong>"
    assert escaped in client.get(url("phones")).content.decode()
    add(client)
    assert escaped in client.get(url("link_challenge")).content.decode()


def test_an_anonymous_request_removes_no_phone(alice: Any) -> None:
    # The views ask for a login first; called without one, it finds nothing to remove.
    link = CallAuthPhone.objects.create(user=alice, phone=PHONE)
    request = RequestFactory().post("/")
    request.user = AnonymousUser()
    assert linking.remove_phone(request, link.pk) == (linking.RemoveOutcome.NOT_FOUND, "")
    assert phones_of(alice) == [PHONE]
