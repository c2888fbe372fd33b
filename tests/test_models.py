"""State transitions of a flow: each is a conditional update that one caller wins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from django_callauth.models import CallAuthFlow, CallAuthPhone, FailureReason, FlowStatus
from tests.helpers import OTHER_PHONE as OTHER
from tests.helpers import PHONE, T0, Clock, FlowFactory, snapshot, stored

pytestmark = pytest.mark.django_db


# -- confirm ----------------------------------------------------------------------


@pytest.mark.parametrize("after", [30, 119])
def test_confirm_in_time(clock: Clock, flow_factory: FlowFactory, after: int) -> None:
    flow = flow_factory()
    clock.advance(after)
    assert flow.confirm(PHONE) is True
    row = stored(flow)
    assert (row.status, row.caller, row.confirmed_at) == (FlowStatus.CONFIRMED, PHONE, T0 + timedelta(seconds=after))
    assert flow.status == FlowStatus.CONFIRMED  # the instance is refreshed


@pytest.mark.parametrize("late_by", [0, 1, 3600])
def test_confirm_late_is_refused(clock: Clock, late_by: int, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    clock.advance(120 + late_by)
    assert flow.confirm(PHONE) is False
    row = stored(flow)
    assert row.status == FlowStatus.PENDING
    assert row.caller == ""
    assert row.confirmed_at is None


def test_confirm_with_reported_at_in_time_but_verified_late(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    reported = clock.advance(119)
    clock.advance(5)  # the check that verifies the webhook comes after the deadline
    assert flow.confirm(PHONE, reported_at=reported) is True
    assert flow.status == FlowStatus.CONFIRMED
    # The finishing window counts from the confirmation, not from the report.
    assert flow.confirmed_at == T0 + timedelta(seconds=124)


def test_confirm_with_reported_at_after_the_deadline_is_refused(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    clock.advance(10)
    assert flow.confirm(PHONE, reported_at=T0 + timedelta(seconds=120)) is False
    assert stored(flow).status == FlowStatus.PENDING


def test_a_stale_instance_loses_and_is_refreshed(clock: Clock, flow_factory: FlowFactory) -> None:
    mine = flow_factory()
    theirs = stored(mine)
    assert theirs.confirm(PHONE) is True
    assert mine.status == FlowStatus.PENDING  # stale in memory
    assert mine.fail(FailureReason.PHONE_MISMATCH, caller=OTHER) is False
    assert mine.status == FlowStatus.CONFIRMED
    assert mine.caller == PHONE
    assert stored(mine).failure_reason == ""


# -- fail -------------------------------------------------------------------------


def test_fail_pending(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    clock.advance(7)
    assert flow.fail(FailureReason.PHONE_MISMATCH, caller=OTHER) is True
    row = stored(flow)
    assert (row.status, row.failure_reason, row.caller) == (FlowStatus.FAILED, "phone_mismatch", OTHER)
    assert row.finished_at == T0 + timedelta(seconds=7)


def test_fail_keeps_the_known_caller_when_none_given(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory(status=FlowStatus.USED, caller=PHONE)
    assert flow.fail(FailureReason.NO_ACCOUNT, from_status=FlowStatus.USED) is True
    row = stored(flow)
    assert (row.status, row.failure_reason, row.caller) == (FlowStatus.FAILED, "no_account", PHONE)


def test_fail_only_once(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    assert flow.fail(FailureReason.CANCELLED) is True
    assert flow.fail(FailureReason.PHONE_MISMATCH, caller=OTHER) is False
    row = stored(flow)
    assert (row.failure_reason, row.caller) == ("cancelled", "")


# -- expire -----------------------------------------------------------------------


def test_expire_a_pending_flow_past_its_deadline(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    clock.advance(120)
    assert flow.expire() is True
    row = stored(flow)
    assert row.status == FlowStatus.EXPIRED
    assert row.finished_at == T0 + timedelta(seconds=120)


def test_expire_refuses_a_live_flow(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    clock.advance(119)
    assert flow.expire() is False
    assert stored(flow).status == FlowStatus.PENDING


# -- claim_for_login --------------------------------------------------------------


def test_claim_for_login_once_only(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    flow.confirm(PHONE)
    clock.advance(10)
    assert flow.claim_for_login() is True
    assert flow.status == FlowStatus.USED
    assert flow.finished_at == T0 + timedelta(seconds=10)
    assert flow.claim_for_login() is False
    assert stored(flow).claim_for_login() is False
    assert stored(flow).status == FlowStatus.USED


@pytest.mark.parametrize(
    ("window", "after", "claimed"),
    [(300, 299, True), (300, 300, False), (300, 301, False), (300, 86400, False), (10, 9, True), (10, 11, False)],
)
def test_claim_for_login_only_inside_the_complete_window(
    clock: Clock, settings: Any, flow_factory: FlowFactory, window: int, after: int, claimed: bool
) -> None:
    settings.CALLAUTH_COMPLETE_WINDOW = window
    flow = flow_factory()
    flow.confirm(PHONE)
    clock.advance(after)
    assert flow.claim_for_login() is claimed
    assert stored(flow).status == (FlowStatus.USED if claimed else FlowStatus.CONFIRMED)


@pytest.mark.parametrize("status", [FlowStatus.PENDING, FlowStatus.FAILED, FlowStatus.EXPIRED])
def test_claim_for_login_needs_a_confirmed_flow(clock: Clock, status: str, flow_factory: FlowFactory) -> None:
    flow = flow_factory(status=status, confirmed_at=T0)
    assert flow.claim_for_login() is False
    assert stored(flow).status == status


# -- claim_check ------------------------------------------------------------------


def test_claim_check_at_most_once_per_interval(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    assert flow.claim_check(3, 100) is True
    assert flow.last_checked_at == T0
    assert flow.claim_check(3, 100) is False
    clock.advance(2.999)
    assert flow.claim_check(3, 100) is False
    clock.advance(0.001)
    assert flow.claim_check(3, 100) is True
    assert stored(flow).last_checked_at == T0 + timedelta(seconds=3)


def test_claim_check_stops_at_the_most_checks_a_flow_may_cost(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    for _ in range(2):
        assert flow.claim_check(3, 2) is True
        clock.advance(3)
    assert flow.claim_check(3, 2) is False
    assert stored(flow).checks_made == 2


def test_claim_check_asked_for_by_i_have_called_stops_at_its_bound(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    for _ in range(2):
        assert flow.claim_check(3, 100, called_bound=2) is True
        clock.advance(3)
    assert flow.claim_check(3, 100, called_bound=2) is False
    assert flow.claim_check(3, 100) is True  # a check a report asked for is not bounded so
    assert (stored(flow).checks_made, stored(flow).called_checks) == (3, 2)


def test_claim_check_is_shared_between_instances(clock: Clock, flow_factory: FlowFactory) -> None:
    # Two processes polling the same flow hold two instances of it.
    first = flow_factory()
    second = stored(first)
    assert first.claim_check(3, 100) is True
    assert second.claim_check(3, 100) is False
    assert second.last_checked_at == T0


# -- set_started, note_webhook, set_user -----------------------------------------


def test_set_started_records_the_provider_answer_once(flow_factory: FlowFactory) -> None:
    flow = flow_factory(call_to="", provider_id="")
    assert flow.set_started(call_to="+79990001234", provider_id="122760") is True
    assert (flow.call_to, flow.provider_id) == ("+79990001234", "122760")
    assert flow.set_started(call_to="+79990009999", provider_id="999") is False
    row = stored(flow)
    assert (row.call_to, row.provider_id) == ("+79990001234", "122760")


def test_note_webhook_once(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    clock.advance(5)
    assert flow.note_webhook() is True
    assert flow.webhook_received_at == T0 + timedelta(seconds=5)
    clock.advance(5)
    assert flow.note_webhook() is False
    assert stored(flow).webhook_received_at == T0 + timedelta(seconds=5)


def test_note_callback_each_time(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    assert flow.note_callback() is True
    clock.advance(5)
    assert flow.note_callback() is True
    assert stored(flow).webhook_received_at == T0 + timedelta(seconds=5)


def test_forget_callback_only_the_one_a_check_answered(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    flow.note_callback()
    clock.advance(1)
    flow.note_callback()  # another came meanwhile
    assert flow.forget_callback(T0) is False
    assert stored(flow).webhook_received_at == T0 + timedelta(seconds=1)
    assert flow.forget_callback(T0 + timedelta(seconds=1)) is True
    assert stored(flow).webhook_received_at is None


# Each transition out of pending, and the clock that would let it through were the flow pending.
FROM_PENDING: dict[str, tuple[Callable[[CallAuthFlow], bool], int]] = {
    "confirm": (lambda flow: flow.confirm(PHONE), 0),
    "expire": (lambda flow: flow.expire(), 1000),
    "claim_check": (lambda flow: flow.claim_check(3, 100), 0),
    "set_started": (lambda flow: flow.set_started(call_to="+79990001234", provider_id="1"), 0),
    "note_webhook": (lambda flow: flow.note_webhook(), 0),
    "note_callback": (lambda flow: flow.note_callback(), 0),
    "forget_callback": (lambda flow: flow.forget_callback(flow.created_at), 0),
    "claim_check on request": (lambda flow: flow.claim_check(3, 100, called_bound=3), 0),
}


@pytest.mark.parametrize("status", [FlowStatus.CONFIRMED, FlowStatus.USED, FlowStatus.FAILED, FlowStatus.EXPIRED])
@pytest.mark.parametrize("transition", FROM_PENDING)
def test_transitions_from_pending_leave_a_finished_flow_alone(
    clock: Clock, flow_factory: FlowFactory, transition: str, status: str
) -> None:
    flow = flow_factory(status=status, call_to="", provider_id="")
    call, after = FROM_PENDING[transition]
    clock.advance(after)
    before = snapshot()
    assert call(flow) is False
    assert snapshot() == before


def test_set_user(flow_factory: FlowFactory, alice: Any) -> None:
    flow = flow_factory()
    flow.set_user(alice)
    assert flow.user == alice
    assert stored(flow).user == alice


# -- derived state ----------------------------------------------------------------


def test_current_status_of_a_pending_flow(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    assert flow.current_status() == FlowStatus.PENDING
    clock.advance(119)
    assert flow.current_status() == FlowStatus.PENDING
    clock.advance(1)
    assert flow.current_status() == FlowStatus.EXPIRED
    assert stored(flow).status == FlowStatus.PENDING  # derived only, nothing written


def test_current_status_of_a_confirmed_flow(clock: Clock, settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_COMPLETE_WINDOW = 300
    flow = flow_factory()
    clock.advance(100)
    flow.confirm(PHONE)
    clock.advance(200)  # past the number's lifetime, inside the finishing window
    assert flow.current_status() == FlowStatus.CONFIRMED
    clock.advance(99)
    assert flow.current_status() == FlowStatus.CONFIRMED
    clock.advance(1)
    assert flow.current_status() == FlowStatus.EXPIRED


def test_current_status_takes_an_explicit_now(flow_factory: FlowFactory) -> None:
    flow = flow_factory(created_at=T0)
    assert flow.current_status(T0 + timedelta(seconds=60)) == FlowStatus.PENDING
    assert flow.current_status(T0 + timedelta(seconds=121)) == FlowStatus.EXPIRED


def test_complete_by(flow_factory: FlowFactory) -> None:
    flow = flow_factory(created_at=T0, confirmed_at=T0 + timedelta(seconds=50))
    assert flow.complete_by == T0 + timedelta(seconds=350)
    assert flow_factory(created_at=T0).complete_by == T0 + timedelta(seconds=420)


def test_expires_in(clock: Clock, flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    assert flow.expires_in() == 120
    clock.advance(30.5)
    assert flow.expires_in() == 89
    clock.advance(89.4)
    assert flow.expires_in() == 0
    clock.advance(1000)
    assert flow.expires_in() == 0
    assert flow.expires_in(T0 + timedelta(seconds=20)) == 100


def test_uses_webhook(flow_factory: FlowFactory) -> None:
    assert flow_factory().uses_webhook is False
    assert flow_factory(webhook_secret_hash="a" * 64).uses_webhook is True


def test_str(flow_factory: FlowFactory) -> None:
    assert str(flow_factory()) == "+79001234567 (pending)"


def test_new_flows_are_pending_with_a_random_id(flow_factory: FlowFactory) -> None:
    first, second = flow_factory(), flow_factory()
    assert first.status == FlowStatus.PENDING
    assert first.pk != second.pk


def test_newest_flows_first(clock: Clock, flow_factory: FlowFactory) -> None:
    older = flow_factory(created_at=T0)
    newer = flow_factory(created_at=T0 + timedelta(seconds=1))
    assert list(CallAuthFlow.objects.all()) == [newer, older]


# -- CallAuthPhone ------------------------------------------------------------------


@pytest.mark.parametrize(("method", "phone"), [("clean", "8 (900) 123-45-67"), ("full_clean", "8 900 123 45 67")])
def test_phone_clean_normalises(alice: Any, method: str, phone: str) -> None:
    link = CallAuthPhone(user=alice, phone=phone)
    getattr(link, method)()
    assert link.phone == PHONE


def test_phone_clean_refuses_invalid_numbers_with_the_user_message(alice: Any) -> None:
    link = CallAuthPhone(user=alice, phone="+7 800 555 35 35")
    with pytest.raises(ValidationError) as excinfo:
        link.clean()
    assert excinfo.value.message_dict == {"phone": ["Only Russian mobile numbers (+7 9XX …) can log in by phone call."]}


def test_one_phone_one_user(alice: Any, django_user_model: Any) -> None:
    CallAuthPhone.objects.create(user=alice, phone=PHONE)
    with pytest.raises(IntegrityError), transaction.atomic():
        CallAuthPhone.objects.create(user=django_user_model.objects.create_user("bob"), phone=PHONE)


def test_phone_links_go_with_their_user(alice: Any) -> None:
    CallAuthPhone.objects.create(user=alice, phone=PHONE)
    assert str(alice.callauth_phones.get()) == PHONE
    alice.delete()
    assert not CallAuthPhone.objects.exists()


def test_deleting_a_user_keeps_the_flows_as_audit_trail(flow_factory: FlowFactory, alice: Any) -> None:
    flow = flow_factory(user=alice, status=FlowStatus.USED)
    alice.delete()
    assert stored(flow).user is None


def test_phone_full_clean_reports_a_blank_phone_once(alice: Any) -> None:
    with pytest.raises(ValidationError) as excinfo:
        CallAuthPhone(user=alice, phone="").full_clean()
    assert excinfo.value.message_dict == {"phone": ["This field cannot be blank."]}
