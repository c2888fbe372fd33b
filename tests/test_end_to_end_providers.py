"""End to end over real HTTP with sms.ru and SMSC.

The example site on a live server, the sms.ru and SMSC fakes on loopback: the site talks
HTTP to the fakes, the fakes post their account callbacks to the site, and the "browser"
is a ``requests`` session, as a single-page app would be.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fake_sms_ru import FakeSmsRu
from tests.fake_smsc import FakeSmsc
from tests.helpers import OTHER_PHONE, PHONE, LiveClient, assert_logged_in_as

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sms_ru_site(live_server: Any, settings: Any, fake_sms_ru: FakeSmsRu) -> Any:
    settings.CALLAUTH_PROVIDER = "sms_ru"
    settings.CALLAUTH_SMS_RU_API_ID = fake_sms_ru.api_id
    settings.CALLAUTH_SMS_RU_URL = fake_sms_ru.base_url
    settings.CALLAUTH_CHECK_INTERVAL = 1
    settings.CALLAUTH_SIGNUP = True
    del settings.CALLAUTH_TTL  # sms.ru's own 5 minutes
    return live_server


@pytest.fixture
def callback_site(sms_ru_site: Any, settings: Any, fake_sms_ru: FakeSmsRu) -> Any:
    """The callback URL registered in the (fake) sms.ru account, as docs/providers/sms-ru.rst says."""
    settings.CALLAUTH_SMS_RU_CALLBACK = True
    fake_sms_ru.callback_url = sms_ru_site.url + "/callauth/callback/sms_ru/"
    return sms_ru_site


def actions(fake: FakeSmsRu) -> list[str]:
    return [r.action for r in fake.requests]


def test_sms_ru_in_check_mode(sms_ru_site: Any, fake_sms_ru: FakeSmsRu) -> None:
    browser = LiveClient(sms_ru_site.url)
    started = browser.start("8 900 123-45-67", next="/?welcome=1")
    assert re.fullmatch(r"\+7800\d{7}", started["call_to"])  # toll-free: free for the caller
    assert 295 <= started["expires_in"] <= 300
    assert browser.status() == "pending"
    assert fake_sms_ru.requests[0].body["phone"] == "79001234567"

    assert fake_sms_ru.make_call(started["call_to"], PHONE) is None  # no callback registered
    assert browser.wait_for_status("confirmed") == "confirmed"
    assert browser.complete().json() == {"redirect": "/?welcome=1"}
    assert_logged_in_as(browser, PHONE)
    assert fake_sms_ru.api_id not in str([r.path for r in fake_sms_ru.requests])  # never in a URL


def test_sms_ru_with_its_account_callback(callback_site: Any, fake_sms_ru: FakeSmsRu) -> None:
    browser = LiveClient(callback_site.url)
    started = browser.start()
    for _ in range(3):
        assert browser.status() == "pending"
    assert actions(fake_sms_ru) == ["callcheck/add"]  # polls cost nothing before the callback

    assert fake_sms_ru.make_call(started["call_to"], PHONE) == 200
    assert browser.wait_for_status("confirmed") == "confirmed"
    assert actions(fake_sms_ru) == ["callcheck/add", "callcheck/status"]  # the callback, verified once
    assert browser.complete().status_code == 200
    assert_logged_in_as(browser, PHONE)


# -- SMSC: a number to call, the result only by its account's signed handler callback ------------


@pytest.fixture
def smsc_site(live_server: Any, smsc: Any, fake_smsc: FakeSmsc) -> Any:
    """The handler URL registered in the (fake) SMSC account, as docs/providers/smsc.rst says."""
    smsc.CALLAUTH_CHECK_INTERVAL = 1
    smsc.CALLAUTH_SIGNUP = True
    del smsc.CALLAUTH_TTL  # the provider's own lifetime
    fake_smsc.callback_url = live_server.url + "/callauth/callback/smsc/"
    return live_server


def test_smsc_with_its_signed_handler_callback(smsc_site: Any, smsc: Any, fake_smsc: FakeSmsc) -> None:
    browser = LiveClient(smsc_site.url)
    started = browser.start("8 900 123-45-67", next="/?welcome=1")
    assert re.fullmatch(r"\+7495\d{7}", started["call_to"])
    assert browser.status() == "pending"
    assert fake_smsc.requests[0].body["phone"] == "79001234567"

    assert fake_smsc.make_call(started["call_to"], OTHER_PHONE) is None  # another phone: SMSC sends nothing
    assert fake_smsc.make_call(started["call_to"], PHONE) == 200
    assert browser.wait_for_status("confirmed") == "confirmed"
    assert browser.complete().json() == {"redirect": "/?welcome=1"}
    assert_logged_in_as(browser, PHONE)
    assert [r.action for r in fake_smsc.requests] == ["sys/wait_call.php"]  # no status request exists
    assert smsc.CALLAUTH_SMSC_APIKEY not in str([r.path for r in fake_smsc.requests])  # never in a URL
