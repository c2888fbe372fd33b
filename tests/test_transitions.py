"""A flow's status changes only along ``models.ALLOWED_TRANSITIONS``, through the methods that own them.

Each allowed change is made by its public method; then every method is called on a flow
in every status (in time and late, of both purposes), and the stored status must stay or
move along an edge of the table that the method owns; together those calls make every
edge of the table, so the table lists nothing no method does. ``_transition`` refuses
any other pair before touching the database.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Q
from django.utils import timezone

from django_callauth.conf import app_settings
from django_callauth.models import (
    ALLOWED_TRANSITIONS,
    SHOWN_EXPIRED,
    CallAuthFlow,
    FailureReason,
    FlowPurpose,
    FlowStatus,
    TransitionNotAllowed,
)
from tests.helpers import OTHER_PHONE, PHONE, FlowFactory, stored

pytestmark = pytest.mark.django_db


P, C, E, F, U = FlowStatus.PENDING, FlowStatus.CONFIRMED, FlowStatus.EXPIRED, FlowStatus.FAILED, FlowStatus.USED
Edge = tuple[FlowStatus, FlowStatus]


def make_flow(status: FlowStatus, *, late: bool = False, purpose: str = FlowPurpose.LOGIN) -> CallAuthFlow:
    """A flow stored in ``status``; ``late``: past its deadline, and past ``complete_by`` once confirmed.

    Not yet handed a number by a provider (no ``provider_id``), so the updates of a
    starting flow may happen too.
    """
    confirmed = status in (C, U, F)
    confirmed_at = timezone.now() - timedelta(seconds=app_settings.COMPLETE_WINDOW + 10 if late else 5)
    return FlowFactory()(
        age=timedelta(seconds=200),
        lifetime=190 if late else 300,
        status=status,
        purpose=purpose,
        call_to="",
        provider_id="",
        caller=PHONE if confirmed else "",
        confirmed_at=confirmed_at if confirmed else None,
    )


#: Every public method that updates a flow, called as the app calls it.
METHODS: dict[str, Callable[[CallAuthFlow], Any]] = {
    "set_started": lambda flow: flow.set_started(call_to="+79990001234", provider_id="p-1"),
    "hand_to": lambda flow: flow.hand_to("sandbox", webhook_secret_hash="", expires_at=flow.expires_at),
    "note_webhook": lambda flow: flow.note_webhook(),
    "note_callback": lambda flow: flow.note_callback(),
    "forget_callback": lambda flow: flow.forget_callback(flow.created_at),
    "claim_check": lambda flow: flow.claim_check(interval=0, max_checks=100),
    "claim_check on request": lambda flow: flow.claim_check(interval=0, max_checks=100, called_bound=3),
    "confirm": lambda flow: flow.confirm(PHONE),
    # A webhook that came in time, verified after the deadline.
    "confirm reported in time": lambda flow: flow.confirm(PHONE, reported_at=flow.created_at),
    "fail": lambda flow: flow.fail(FailureReason.PHONE_MISMATCH, caller=OTHER_PHONE),
    "fail from used": lambda flow: flow.fail(FailureReason.NO_ACCOUNT, from_status=U),
    "expire": lambda flow: flow.expire(),
    "claim_for_login": lambda flow: flow.claim_for_login(),
    "claim_for_link": lambda flow: flow.claim_for_link(),
    "set_user": lambda flow: flow.set_user(None),
}

#: The edges each method exists to make; the others make none.
OWNS: dict[str, set[Edge]] = {
    "confirm": {(P, C)},
    "confirm reported in time": {(P, C)},
    "fail": {(P, F)},
    "fail from used": {(U, F)},
    "expire": {(P, E)},
    "claim_for_login": {(C, U)},
    "claim_for_link": {(C, U)},
}

#: For each allowed edge, the method that makes it and a flow it makes it on.
EDGE_CASES: list[tuple[Edge, str, dict[str, Any]]] = [
    ((P, C), "confirm", {}),
    ((P, F), "fail", {}),
    ((P, E), "expire", {"late": True}),
    ((C, U), "claim_for_login", {"purpose": FlowPurpose.LOGIN}),
    ((C, U), "claim_for_link", {"purpose": FlowPurpose.LINK}),
    ((U, F), "fail from used", {}),
]


def test_every_allowed_edge_has_a_case_and_an_owner() -> None:
    assert {edge for edge, _method, _flow in EDGE_CASES} == ALLOWED_TRANSITIONS
    assert set().union(*OWNS.values()) == ALLOWED_TRANSITIONS
    assert set(OWNS) <= set(METHODS)


@pytest.mark.parametrize(("edge", "method", "flow_kwargs"), EDGE_CASES, ids=lambda value: str(value))
def test_each_allowed_transition_happens_through_its_method(
    edge: Edge, method: str, flow_kwargs: dict[str, Any]
) -> None:
    source, target = edge
    flow = make_flow(source, **flow_kwargs)
    assert METHODS[method](flow) is True
    assert stored(flow).status == target
    assert flow.status == target  # the instance is refreshed


def test_no_method_makes_a_transition_missing_from_the_table() -> None:
    """Every method, on a flow in every status, early and late, of both purposes.

    The status stays, or moves along an edge of the table that this method owns; and the
    calls together make every edge of the table (the table and the methods agree).
    """
    made: dict[str, set[Edge]] = {name: set() for name in METHODS}
    for status, late, purpose, name in itertools.product(FlowStatus, (False, True), FlowPurpose, METHODS):
        flow = make_flow(status, late=late, purpose=purpose)
        METHODS[name](flow)
        after = stored(flow).status
        if after != status:
            made[name].add((status, after))
            assert (status, after) in ALLOWED_TRANSITIONS, f"{name} on a {status} flow made it {after}"
    for name, edges in made.items():
        assert edges <= OWNS.get(name, set()), f"{name} made {edges}"
    assert set().union(*made.values()) == ALLOWED_TRANSITIONS


@pytest.mark.parametrize(
    ("source", "target"),
    sorted(set(itertools.product(FlowStatus, FlowStatus)) - ALLOWED_TRANSITIONS),
    ids=lambda status: str(status),
)
def test_transition_refuses_every_other_pair(source: FlowStatus, target: FlowStatus) -> None:
    flow = make_flow(source, late=source == P and target == E)
    with pytest.raises(TransitionNotAllowed):
        flow._transition(source, target)
    assert stored(flow).status == source


@pytest.mark.parametrize("status", [status for status in FlowStatus if (status, F) not in ALLOWED_TRANSITIONS])
def test_fail_refuses_a_source_the_table_does_not_allow(status: FlowStatus) -> None:
    flow = make_flow(status)
    with pytest.raises(TransitionNotAllowed):
        flow.fail(FailureReason.CANCELLED, from_status=status)
    assert stored(flow).status == status


def test_an_update_within_a_status_cannot_change_it() -> None:
    flow = make_flow(P)
    with pytest.raises(TransitionNotAllowed):
        flow._update_while(P, Q(), status=C)
    assert stored(flow).status == P


@pytest.mark.parametrize(("status", "late"), list(itertools.product(FlowStatus, (False, True))))
def test_current_status_only_shows_expired_instead(status: FlowStatus, late: bool) -> None:
    """What a client sees is the stored status, or expired for the statuses of ``SHOWN_EXPIRED``."""
    flow = make_flow(status, late=late)
    shown = flow.current_status()
    if late and status in SHOWN_EXPIRED:
        assert shown == E
    else:
        assert shown == status
