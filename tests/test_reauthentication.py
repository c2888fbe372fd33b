"""When a session last logged in, and whether that is recent enough to change its phones."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from django_callauth.guards.reauthentication import AUTHENTICATED_AT_KEY, recently_authenticated
from tests.helpers import T0, Clock

pytestmark = pytest.mark.django_db


def request_logged_in_at(at: Any = None) -> Any:
    request = RequestFactory().get("/")
    request.session = SessionStore()
    if at is not None:
        request.session[AUTHENTICATED_AT_KEY] = at
    return request


def test_every_login_notes_its_time(clock: Clock, alice: Any) -> None:
    request = request_logged_in_at()
    user_logged_in.send(sender=type(alice), request=request, user=alice)  # as any backend's login() does
    assert request.session[AUTHENTICATED_AT_KEY] == T0.timestamp()


def test_a_login_without_a_request_notes_nothing(alice: Any) -> None:
    user_logged_in.send(sender=type(alice), request=None, user=alice)  # a script's login: no session to mark


@pytest.mark.parametrize(
    "age, recent",
    [(0, True), (299.9, True), (300, False), (3600, False), (-0.001, False)],
)
def test_recent_means_within_the_timeout_and_not_in_the_future(clock: Clock, age: float, recent: bool) -> None:
    assert recently_authenticated(request_logged_in_at(T0.timestamp() - age)) is recent


@pytest.mark.parametrize(
    "planted",
    [str(T0.timestamp()), "2030-01-15T12:00:20+00:00", True, None, [T0.timestamp()], {"at": T0.timestamp()}]
    + [T0.timestamp() + 60, T0.timestamp() + 10**9, math.nan, math.inf, -math.inf],
    ids=repr,
)
def test_a_planted_value_is_no_login_time(clock: Clock, planted: Any) -> None:
    request = request_logged_in_at()
    request.session[AUTHENTICATED_AT_KEY] = planted
    assert recently_authenticated(request) is False


def test_a_whole_number_counts_too(clock: Clock) -> None:
    assert recently_authenticated(request_logged_in_at(int(T0.timestamp()) - 1)) is True


def test_the_timeout_is_read_at_each_request(clock: Clock, settings: Any) -> None:
    request = request_logged_in_at(T0.timestamp() - 600)
    assert recently_authenticated(request) is False
    settings.CALLAUTH_REAUTHENTICATION_TIMEOUT = 601
    assert recently_authenticated(request) is True
