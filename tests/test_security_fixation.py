"""Session fixation (docs/security.rst, invariants 13 and 6): a session key planted before ``start`` finishes nothing.

The attacker gets a session of his own, plants its cookie in the victim's browser (a
sibling subdomain, a pre-HSTS network, a shared kiosk), and waits for the victim to call.
The login itself goes through ``authenticate()`` then ``login()``, which rotates the
session key and the CSRF token: the key from before the login is worth nothing.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import user_logged_in
from django.contrib.sessions.models import Session
from django.test import Client

from django_callauth.flows import SESSION_FLOW_KEY
from tests.helpers import (
    JSON,
    PHONE,
    assert_json_error,
    complete,
    logged_in_phone,
    sandbox_confirm,
    start,
    the_flow,
    url,
)

pytestmark = pytest.mark.django_db


def attacker_session(phone: str | None = None) -> tuple[Client, str]:
    """The attacker's browser and its session key; with ``phone``, a flow he started for it."""
    attacker = Client()
    if phone:
        assert start(attacker, phone).status_code == 201
    else:
        session = attacker.session
        session["visited"] = True
        session.save()
        attacker.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    return attacker, attacker.cookies[settings.SESSION_COOKIE_NAME].value


def planted(session_key: str) -> Client:
    victim = Client()
    victim.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return victim


def test_a_planted_session_cannot_finish_the_victims_login() -> None:
    attacker, key = attacker_session()
    victim = planted(key)
    assert start(victim, PHONE).status_code == 201
    assert victim.cookies[settings.SESSION_COOKIE_NAME].value != key
    assert victim.post(url("sandbox_call"), **JSON).json()["status"] == "confirmed"  # the victim called

    assert_json_error(complete(attacker), 400, "no_flow")
    assert logged_in_phone(attacker) is None
    assert complete(victim).status_code == 200
    assert logged_in_phone(victim) == PHONE


def test_a_planted_session_holding_a_flow_for_the_victims_phone_is_not_reused_by_him() -> None:
    # The attacker starts a flow for the victim's phone, plants it, and the victim's own start
    # reuses that live number: the flow moves to a new key the attacker does not have.
    attacker, key = attacker_session(PHONE)
    attackers_flow = the_flow(attacker)
    victim = planted(key)
    assert start(victim, PHONE).status_code == 201
    assert the_flow(victim) == attackers_flow  # the same live number, reused at no cost
    assert victim.post(url("sandbox_call"), **JSON).json()["status"] == "confirmed"

    assert_json_error(complete(attacker), 400, "no_flow")
    assert complete(victim).status_code == 200
    assert logged_in_phone(victim) == PHONE


def test_the_planted_session_is_deleted_not_just_left_behind() -> None:
    _attacker, key = attacker_session()
    start(planted(key), PHONE)
    assert not Session.objects.filter(session_key=key).exists()


# == Invariant 6: authenticate() then login() ===========================================================


class TestInvariant6RealLogin:
    def test_login_rotates_session_and_csrf_fires_signal_and_forgets_the_flow(self, client):
        events = []

        def receiver(sender, user, request, **kwargs):
            events.append(user.pk)

        client.get("/login/")
        csrf_before = client.cookies["csrftoken"].value
        sandbox_confirm(client)
        session_before = client.cookies["sessionid"].value
        assert SESSION_FLOW_KEY in client.session
        user_logged_in.connect(receiver)
        try:
            response = complete(client)
        finally:
            user_logged_in.disconnect(receiver)
        assert response.status_code == 200
        assert len(events) == 1
        assert client.cookies["sessionid"].value != session_before
        assert client.cookies["csrftoken"].value != csrf_before
        assert SESSION_FLOW_KEY not in client.session
        assert client.session["_auth_user_backend"] == "django_callauth.backends.CallAuthBackend"
        assert logged_in_phone(client) == PHONE
        # The pre-login session key is dead: a fixated or stolen one is worth nothing.
        stale = Client()
        stale.cookies["sessionid"] = session_before
        assert logged_in_phone(stale) is None
