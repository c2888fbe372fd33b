"""The sms.ru callcheck client against its loopback fake: requests, answers, errors, callbacks."""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from django.test import RequestFactory

from django_callauth.providers.base import (
    CallReport,
    ProviderBalance,
    ProviderConfigurationError,
    ProviderError,
    ProviderMalformedAnswer,
    ProviderRejected,
    ProviderUnavailable,
)
from django_callauth.providers.sms_ru import SmsRuProvider
from tests.fake_sms_ru import FakeSmsRu
from tests.helpers import PHONE
from tests.provider_contract import HttpProviderContract


def client_for(fake: FakeSmsRu, *, timeout: tuple[float, float] = (2, 2), deadline: float = 4) -> SmsRuProvider:
    return SmsRuProvider(api_id=fake.api_id, base_url=fake.base_url, timeout=timeout, deadline=deadline)


class TestContract(HttpProviderContract):
    """sms.ru passes the contract every provider passes (tests/provider_contract.py)."""

    wrong_start_answers: ClassVar[list[Any]] = [
        '{"status": "OK", "status_code": 100, "check_id": ["1"], "call_phone": "78005008275"}',
        '{"status": "OK", "status_code": 100, "check_id": "1-2", "call_phone": true}',
        '{"status": "OK", "status_code": 100, "check_id": "1-2", "call_phone": "78095008275"}',  # premium
        '{"status": "OK", "status_code": 100, "check_id": "../1", "call_phone": "78005008275"}',
        '{"status": "OK", "status_code": 202, "check_id": "1-2", "call_phone": "78005008275"}',
        '{"status": true, "status_code": 100, "check_id": "1-2", "call_phone": "78005008275"}',
        '{"status_code": 100, "check_id": "1-2", "call_phone": "78005008275"}',
    ]
    wrong_check_answers: ClassVar[list[Any]] = [
        '{"status": "OK", "status_code": 100, "check_status": 401.0}',
        '{"status": "OK", "status_code": 100, "check_status": true}',
        '{"status": "OK", "status_code": 100, "check_status": ["401"]}',
        '{"status": "OK", "status_code": 100, "check_status": "401x"}',
        '{"status": "ERROR", "status_code": 100, "check_status": "401"}',
        '{"status": "OK", "status_code": 202, "check_status": "401"}',
        '{"status": "OK", "status_code": 100}',
        '{"status": "OK", "status_code": 100, "check_status": "402"}',
        "[]",
        "null",
    ]

    @pytest.fixture(autouse=True)
    def _fake(self, fake_sms_ru: FakeSmsRu) -> None:
        self.fake = fake_sms_ru
        self.secret = fake_sms_ru.api_id

    def make_provider(self, *, timeout: tuple[float, float] = (2, 2), deadline: float = 4) -> SmsRuProvider:
        return client_for(self.fake, timeout=timeout, deadline=deadline)


@pytest.fixture
def provider(fake_sms_ru: FakeSmsRu) -> SmsRuProvider:
    return client_for(fake_sms_ru)


def test_start_posts_the_api_id_in_the_body_never_in_the_url(fake_sms_ru: FakeSmsRu, provider: SmsRuProvider) -> None:
    started = provider.start(PHONE, None)
    (asked,) = fake_sms_ru.requests
    assert (asked.method, asked.path, asked.params) == ("POST", "/callcheck/add", {})
    assert asked.body == {"api_id": fake_sms_ru.api_id, "phone": "79001234567", "json": "1"}
    assert started.call_to.startswith("+7800")  # a toll-free number: free for the caller
    assert started.provider_id == next(iter(fake_sms_ru._checks))


def test_the_number_to_call_comes_from_call_phone_never_from_its_html(
    fake_sms_ru: FakeSmsRu, provider: SmsRuProvider
) -> None:
    fake_sms_ru.fail_next(
        200,
        '{"status": "OK", "status_code": 100, "check_id": "201737-542", "call_phone": "78005008275",'
        ' "call_phone_pretty": "+7 (800) 111-2233", "call_phone_html": "<script>x</script>"}',
    )
    started = provider.start(PHONE, None)
    assert (started.call_to, started.provider_id) == ("+78005008275", "201737-542")


@pytest.mark.parametrize("flip_types", [False, True], ids=["as-documented", "types-flipped"])
def test_codes_as_numbers_or_text(fake_sms_ru: FakeSmsRu, provider: SmsRuProvider, flip_types: bool) -> None:
    fake_sms_ru.flip_types = flip_types
    started = provider.start(PHONE, None)
    assert provider.check(started.provider_id) == CallReport(caller=None, provider_id=started.provider_id)
    fake_sms_ru.make_call(started.call_to, PHONE)
    assert provider.check(started.provider_id).vouched


@pytest.mark.parametrize(
    ("code", "error", "no_call_set_up"),
    [
        (200, ProviderConfigurationError, True),  # wrong api_id
        (301, ProviderConfigurationError, True),
        (201, ProviderRejected, True),  # no money left
        (220, ProviderUnavailable, True),  # temporarily unavailable
        (500, ProviderUnavailable, False),
        (202, ProviderRejected, False),  # this phone
        (999, ProviderRejected, False),  # unknown
    ],
)
def test_start_error_codes(
    fake_sms_ru: FakeSmsRu, provider: SmsRuProvider, code: int, error: type[ProviderError], no_call_set_up: bool
) -> None:
    fake_sms_ru.fail_next(200, f'{{"status": "ERROR", "status_code": "{code}", "status_text": "нет"}}')
    with pytest.raises(ProviderError) as info:
        provider.start(PHONE, None)
    assert (type(info.value), info.value.no_call_set_up) == (error, no_call_set_up)


def test_a_wrong_api_id_is_a_configuration_error(fake_sms_ru: FakeSmsRu) -> None:
    provider = SmsRuProvider(api_id="WRONG", base_url=fake_sms_ru.base_url)
    with pytest.raises(ProviderConfigurationError, match=r"^sms\.ru refused the api_id \(error 200\)\.$"):
        provider.start(PHONE, None)


def test_no_api_id_fails_before_any_request(fake_sms_ru: FakeSmsRu) -> None:
    with pytest.raises(ProviderConfigurationError):
        SmsRuProvider(api_id="", base_url=fake_sms_ru.base_url).start(PHONE, None)
    assert fake_sms_ru.requests == []


def test_check_error_codes_about_this_check_are_pending(fake_sms_ru: FakeSmsRu, provider: SmsRuProvider) -> None:
    started = provider.start(PHONE, None)
    fake_sms_ru.fail_next(200, '{"status": "ERROR", "status_code": 202, "status_text": "check_id?"}')
    assert provider.check(started.provider_id) == CallReport(caller=None, provider_id=started.provider_id)


def test_check_is_retried_once_when_unavailable(fake_sms_ru: FakeSmsRu, provider: SmsRuProvider) -> None:
    started = provider.start(PHONE, None)
    fake_sms_ru.make_call(started.call_to, PHONE)
    fake_sms_ru.fail_next(200, '{"status": "ERROR", "status_code": 220}')
    assert provider.check(started.provider_id).vouched
    assert [r.action for r in fake_sms_ru.requests] == ["callcheck/add"] + ["callcheck/status"] * 2


@pytest.mark.parametrize("check_id", ["", "../1", "1 2", "x" * 65])
def test_check_of_a_malformed_stored_id_asks_nothing(
    fake_sms_ru: FakeSmsRu, provider: SmsRuProvider, check_id: str
) -> None:
    with pytest.raises(ProviderMalformedAnswer, match="The stored sms.ru check_id is not a valid id."):
        provider.check(check_id)
    assert fake_sms_ru.requests == []


def test_from_settings(settings: Any, fake_sms_ru: FakeSmsRu) -> None:
    settings.CALLAUTH_SMS_RU_API_ID = fake_sms_ru.api_id
    settings.CALLAUTH_SMS_RU_URL = fake_sms_ru.base_url.rstrip("/")  # the slash is added
    settings.CALLAUTH_SMS_RU_CALLBACK = True
    provider = SmsRuProvider.from_settings()
    assert provider.awaits_callback
    assert provider.start(PHONE, None).call_to.startswith("+7800")
    assert SmsRuProvider.secrets() == (fake_sms_ru.api_id,)


# -- the account callback --------------------------------------------------------------------

rf = RequestFactory()
ENTRY = "callcheck_status\n201737-542\n401\n1700000000"
SMS_STATUS = "sms_status\n1-1\n103\n1700000000"


def signed(*entries: str, api_id: str = "x") -> str:
    """The ``hash`` public clients of sms.ru check: sha256 of the api_id, then every entry in order."""
    return hashlib.sha256((api_id + "".join(entries)).encode()).hexdigest()


@pytest.mark.parametrize(
    "form",
    [
        {"data[]": [ENTRY]},
        {"data[0]": ENTRY},
        {"data": ENTRY},
        {"data[]": [ENTRY.replace("\n", "\r\n")]},
        {"data[]": [SMS_STATUS, ENTRY], "hash": signed(SMS_STATUS, ENTRY)},
    ],
    ids=["data[]", "data[0]", "data", "crlf", "with-sms-status"],
)
def test_callback_shapes(form: dict[str, Any]) -> None:
    reports = SmsRuProvider(api_id="x").parse_callback(rf.post("/cb/", form))
    assert reports == [CallReport(caller=None, provider_id="201737-542", vouched=True)]


def test_callback_entries_in_their_order_and_other_statuses_are_no_call() -> None:
    form = {"data[1]": "callcheck_status\nb-2\n402\n1", "data[0]": "callcheck_status\na-1\n400\n1"}
    reports = SmsRuProvider(api_id="x").parse_callback(rf.post("/cb/", form))
    assert reports == [CallReport(caller=None, provider_id="a-1"), CallReport(caller=None, provider_id="b-2")]


@pytest.mark.parametrize(
    "form",
    [{}, {"data[]": ["callcheck_status"]}, {"data[]": ["callcheck_status\n../x\n401"]}, {"other": ENTRY}],
)
def test_callback_junk_has_no_reports(form: dict[str, Any]) -> None:
    assert SmsRuProvider(api_id="x").parse_callback(rf.post("/cb/", form)) == []


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data; boundary=x", "multipart/form-data"], ids=["truncated", "no_boundary"]
)
def test_callback_with_an_unreadable_body_never_raises(content_type: str) -> None:
    # Without a boundary, Django refuses to parse the body at all (MultiPartParserError).
    request = rf.post("/cb/", data=b"--x\r\nbroken", content_type=content_type)
    assert SmsRuProvider(api_id="x").parse_callback(request) == []


def test_callback_is_answered_100() -> None:
    response = SmsRuProvider(api_id="x").callback_response()
    assert (response.status_code, response.content, response["Content-Type"]) == (200, b"100", "text/plain")


# -- the callback's hash: verified where sms.ru sends one -------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        {"data[]": [ENTRY], "hash": signed(ENTRY)},
        {"data[]": [ENTRY], "hash": signed(ENTRY).upper()},
        {"data[1]": ENTRY, "data[0]": SMS_STATUS, "hash": signed(SMS_STATUS, ENTRY)},  # in the entries' order
        {"data[]": [ENTRY]},  # no hash: unverified, read as before
        {"data[]": [ENTRY], "hash": ""},
    ],
    ids=["right", "upper-case", "two-entries", "absent", "empty"],
)
def test_a_callback_with_a_right_hash_or_none_is_read(form: dict[str, Any]) -> None:
    reports = SmsRuProvider(api_id="x").parse_callback(rf.post("/cb/", form))
    assert reports == [CallReport(caller=None, provider_id="201737-542", vouched=True)]


SECRET = "SECRET-API-ID"


@pytest.mark.parametrize(
    "form",
    [
        {"data[]": [ENTRY], "hash": signed(ENTRY, api_id="another account")},
        {"data[]": [ENTRY], "hash": signed(ENTRY.replace("201737-542", "201737-543"), api_id=SECRET)},
        {"data[1]": ENTRY, "data[0]": SMS_STATUS, "hash": signed(ENTRY, SMS_STATUS, api_id=SECRET)},
        {"data[]": [ENTRY], "hash": "ё" * 64},
    ],
    ids=["other-api-id", "other-entry", "out-of-order", "not-hex"],
)
def test_a_callback_with_a_wrong_hash_is_ignored_and_logged_without_the_api_id(
    form: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    provider = SmsRuProvider(api_id=SECRET)
    right = {**form, "hash": signed(*([SMS_STATUS, ENTRY] if "data[0]" in form else [ENTRY]), api_id=SECRET)}
    assert provider.parse_callback(rf.post("/cb/", right))  # the same callback, signed right, is read
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="django_callauth"):
        assert provider.parse_callback(rf.post("/cb/", form)) == []
    [record] = caplog.records
    assert (record.levelno, "hash is wrong" in record.getMessage()) == (logging.WARNING, True)
    assert SECRET not in record.getMessage()


def test_the_fake_signs_its_callback_as_the_client_checks_it(fake_sms_ru: FakeSmsRu) -> None:
    started = client_for(fake_sms_ru).start(PHONE, None)
    form: dict[str, list[str]] = {}
    for key, value in fake_sms_ru.callback_form(started.provider_id):
        form.setdefault(key, []).append(value)
    reports = client_for(fake_sms_ru).parse_callback(rf.post("/cb/", form))
    assert reports == [CallReport(caller=None, provider_id=started.provider_id, vouched=True)]
    form["hash"] = [signed(*form["data[]"], api_id="WRONG")]
    assert client_for(fake_sms_ru).parse_callback(rf.post("/cb/", form)) == []


# -- the person's address, and the balance --------------------------------------------------


def test_start_sends_the_persons_address_when_given(fake_sms_ru: FakeSmsRu, provider: SmsRuProvider) -> None:
    assert SmsRuProvider.wants_client_ip
    provider.start(PHONE, None, client_ip="77.88.55.60")
    provider.start(PHONE, None, client_ip=None)
    with_ip, without = fake_sms_ru.requests
    assert with_ip.body == {"api_id": fake_sms_ru.api_id, "phone": "79001234567", "ip": "77.88.55.60", "json": "1"}
    assert "ip" not in without.body


@pytest.mark.parametrize("flip_types", [False, True])
def test_balance_posts_my_balance(fake_sms_ru: FakeSmsRu, provider: SmsRuProvider, flip_types: bool) -> None:
    fake_sms_ru.flip_types = flip_types
    assert provider.balance() == ProviderBalance(Decimal("4762.58"), "RUB", None)
    (asked,) = fake_sms_ru.requests
    assert (asked.method, asked.action, asked.params) == ("POST", "my/balance", {})
    assert asked.body == {"api_id": fake_sms_ru.api_id, "json": "1"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('{"status": "ERROR", "status_code": 200, "status_text": "api_id"}', ProviderConfigurationError),
        ('{"status": "ERROR", "status_code": 207, "status_text": "no"}', ProviderRejected),
        ('{"status": "OK", "status_code": 100}', ProviderMalformedAnswer),
        ('{"status": "OK", "status_code": 100, "balance": "much"}', ProviderMalformedAnswer),
        ('{"status": "OK", "status_code": 100, "balance": [1]}', ProviderMalformedAnswer),
    ],
    ids=["api-id-refused", "refused", "missing", "text", "list"],
)
def test_balance_errors(fake_sms_ru: FakeSmsRu, provider: SmsRuProvider, body: str, error: type) -> None:
    fake_sms_ru.fail_next(200, body)
    with pytest.raises(error) as info:
        provider.balance()
    assert fake_sms_ru.api_id not in str(info.value)


def test_balance_is_retried_once_when_unavailable(fake_sms_ru: FakeSmsRu, provider: SmsRuProvider) -> None:
    fake_sms_ru.fail_next(503, "")
    assert provider.balance().amount == Decimal("4762.58")
    assert len(fake_sms_ru.requests) == 2
