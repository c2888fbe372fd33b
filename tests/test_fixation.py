"""Session fixation (docs/security.rst, invariant 13): a session key planted before ``start`` finishes nothing.

The attacker gets a session of his own, plants its cookie in the victim's browser (a
sibling subdomain, a pre-HSTS network, a shared kiosk), and waits for the victim to call.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from tests.helpers import JSON, PHONE, assert_json_error, logged_in_phone, start, the_flow, url

pytestmark = pytest.mark.django_db

NO_FLOW = "There is no login by phone call in progress in this browser. Enter your phone number to start."


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

    assert_json_error(attacker.post(url("complete"), **JSON), 400, "no_flow", NO_FLOW)
    assert logged_in_phone(attacker) is None
    assert victim.post(url("complete"), **JSON).status_code == 200
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

    assert_json_error(attacker.post(url("complete"), **JSON), 400, "no_flow", NO_FLOW)
    assert victim.post(url("complete"), **JSON).status_code == 200
    assert logged_in_phone(victim) == PHONE


def test_the_planted_session_is_deleted_not_just_left_behind() -> None:
    _attacker, key = attacker_session()
    start(planted(key), PHONE)
    assert not Session.objects.filter(session_key=key).exists()


def test_every_start_issues_a_new_key_even_when_reusing_the_number(client: Client) -> None:
    keys = []
    for _ in range(3):
        assert start(client, PHONE).status_code == 201
        keys.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    assert len(set(keys)) == 3
    assert len({the_flow(client).pk}) == 1
