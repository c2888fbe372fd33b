"""App-store review phones (providers/review.py): a login with no call and no provider request.

A phone of ``CALLAUTH_REVIEW_PHONES`` is started by the review provider, whatever
``CALLAUTH_PROVIDER`` says, and only the press of "I have called" confirms it, with its own
phone. The account still has to be one that may log in by call, the cost limits still count
the start, and every use is logged and signalled.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import responses
from django.test import Client

from django_callauth.models import CallAuthFlow, CallAuthPhone, FlowPurpose, FlowStatus
from django_callauth.providers.review import REVIEW_CALL_TO, NotAReviewPhone, ReviewProvider
from tests.helpers import (
    JSON,
    OTHER_PHONE,
    START_POST,
    FlowFactory,
    SignalLog,
    assert_json_error,
    client_holding,
    complete,
    logged_in_user,
    poll,
    start,
    start_answer,
    stored,
    the_flow,
    url,
)

pytestmark = pytest.mark.django_db

REVIEW_PHONE = "+79000000001"


@pytest.fixture
def review(settings: Any, django_user_model: Any) -> Any:
    """The review account, holding REVIEW_PHONE, which the list names."""
    settings.CALLAUTH_REVIEW_PHONES = [REVIEW_PHONE]
    user = django_user_model.objects.create_user(username="app-review")
    CallAuthPhone.objects.create(user=user, phone=REVIEW_PHONE)
    return user


def log_in_as_reviewer(client: Client) -> Any:
    response = start(client, REVIEW_PHONE)
    assert response.status_code == 201, response.content
    assert response.json()["call_to"] == REVIEW_CALL_TO
    return complete(client)


def test_a_review_phone_logs_in_with_no_provider_request(
    telefon_ip_api: responses.RequestsMock, review: Any, client: Client
) -> None:
    response = log_in_as_reviewer(client)
    assert response.status_code == 200, response.content
    assert logged_in_user(client) == str(review.pk)
    assert len(telefon_ip_api.calls) == 0  # neither a start nor a check: nothing billed
    flow = CallAuthFlow.objects.get()
    assert (flow.provider, flow.status, flow.caller) == ("review", FlowStatus.USED, REVIEW_PHONE)


def test_the_sandbox_guard_does_not_refuse_a_review_phone(settings: Any, review: Any, client: Client) -> None:
    settings.DEBUG = False
    settings.CALLAUTH_SANDBOX_IN_PRODUCTION = False
    settings.CALLAUTH_PROVIDER = "telefon_ip"
    settings.CALLAUTH_TELEFON_IP_TOKEN = "token"
    assert log_in_as_reviewer(client).status_code == 200
    assert logged_in_user(client) == str(review.pk)


def test_only_the_press_confirms_a_review_flow(review: Any, client: Client) -> None:
    assert start(client, REVIEW_PHONE).status_code == 201
    assert [poll(client) for _ in range(3)] == ["pending"] * 3
    assert client.get(url("challenge"), **JSON).json()["status"] == "pending"
    assert "sandbox_call_url" not in client.get(url("challenge"), **JSON).json()
    assert complete(client).status_code == 200


def test_a_staff_review_account_is_refused(review: Any, client: Client) -> None:
    review.is_staff = True
    review.save()
    assert_json_error(log_in_as_reviewer(client), 403, "not_allowed")
    assert logged_in_user(client) is None


def test_the_cost_limits_count_review_starts(settings: Any, review: Any, sent: SignalLog) -> None:
    settings.CALLAUTH_RATE_LIMITS = {"phone": "2/10m"}
    assert [start(Client(), REVIEW_PHONE).status_code for _ in range(3)] == [201, 201, 429]
    assert CallAuthFlow.objects.count() == 2
    assert [event.kwargs["scope"] for event in sent.of("rate_limited")] == ["phone"]
    assert len(sent.of("review_phone_used")) == 2


def test_every_use_is_a_warning_and_a_signal(
    review: Any, client: Client, sent: SignalLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="django_callauth")
    assert log_in_as_reviewer(client).status_code == 200
    flow = CallAuthFlow.objects.get()
    [used] = sent.of("review_phone_used")
    assert used.sender is CallAuthFlow
    assert used.kwargs["flow"] == flow and used.kwargs["request"] is not None
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2  # the start, and the press that confirmed it
    assert all("+7 900 ***-**-01" in message for message in warnings)
    assert all(REVIEW_PHONE not in message for message in warnings)


def test_a_phone_not_listed_is_unaffected(
    telefon_ip_api: responses.RequestsMock, review: Any, client: Client, sent: SignalLog
) -> None:
    telefon_ip_api.post(START_POST, json=start_answer())
    assert start(client, OTHER_PHONE).status_code == 201
    assert len(telefon_ip_api.calls) == 1
    assert the_flow(client).provider == "telefon_ip"
    assert_json_error(complete(client), 409, "not_confirmed")  # no call came: the press proves nothing
    assert sent.of("review_phone_used") == []


def test_the_press_never_confirms_a_flow_of_a_phone_not_listed(
    review: Any, flow_factory: FlowFactory, sent: SignalLog
) -> None:
    flow = flow_factory(phone=OTHER_PHONE, provider="review", call_to=REVIEW_CALL_TO, provider_id="review-1")
    assert_json_error(complete(client_holding(flow)), 409, "not_confirmed")
    assert stored(flow).status == FlowStatus.PENDING


def test_removing_a_phone_from_the_list_stops_its_pending_flow(settings: Any, review: Any, client: Client) -> None:
    assert start(client, REVIEW_PHONE).status_code == 201
    settings.CALLAUTH_REVIEW_PHONES = []
    assert_json_error(complete(client), 409, "not_confirmed")
    assert logged_in_user(client) is None


def test_a_review_flow_adding_a_phone_is_never_confirmed_by_the_press(review: Any, flow_factory: FlowFactory) -> None:
    from django_callauth.flows import refresh_flow

    flow = flow_factory(phone=REVIEW_PHONE, provider="review", purpose=FlowPurpose.LINK)
    refresh_flow(flow, user_says_called=True)
    assert stored(flow).status == FlowStatus.PENDING


def test_adding_a_review_phone_needs_a_real_call(review: Any, alice: Any, client: Client) -> None:
    client.force_login(alice)
    assert client.post(url("phone_add"), {"phone": REVIEW_PHONE}, **JSON).status_code == 201
    flow = CallAuthFlow.objects.get(purpose=FlowPurpose.LINK)
    assert flow.provider == "sandbox"
    assert client.post(url("link_complete"), **JSON).status_code == 409
    assert not CallAuthPhone.objects.filter(user=alice).exists()


def test_the_review_provider_starts_only_listed_phones(review: Any) -> None:
    with pytest.raises(NotAReviewPhone) as refused:
        ReviewProvider().start(OTHER_PHONE, None)
    assert refused.value.no_call_set_up  # a failover list would go on to the next provider
    started = ReviewProvider().start(REVIEW_PHONE, None)
    assert started.call_to == REVIEW_CALL_TO
    assert not ReviewProvider().check(started.provider_id).called


def test_the_review_provider_is_no_choice_by_name(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from django_callauth.providers import get_provider_class

    with pytest.raises(ImproperlyConfigured):
        get_provider_class("review")
