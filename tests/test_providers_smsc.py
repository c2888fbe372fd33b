"""The SMSC.ru wait_call client against its loopback fake: requests, answers, errors, callbacks.

SMSC has no status request: ``check`` reads what a signed handler callback recorded. So the
contract's "phone" here delivers the callback through ``parse_callback`` (a lost callback is
a lost result, by design: docs/providers/smsc.rst).
"""

from __future__ import annotations

import logging
import time
import traceback
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import caches
from django.test import RequestFactory

from django_callauth.conf import app_settings
from django_callauth.providers.base import (
    CallReport,
    ProviderBalance,
    ProviderConfigurationError,
    ProviderError,
    ProviderMalformedAnswer,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from django_callauth.providers.smsc import SmscPhoneBusy, SmscProvider, provider_id_for
from tests.fake_smsc import APIKEY, LOGIN, PASSWORD, FakeSmsc
from tests.helpers import OTHER_PHONE, PHONE
from tests.provider_contract import HTTP_FAILURES, ProviderContract


def client_for(
    fake: FakeSmsc, *, timeout: tuple[float, float] = (2, 2), deadline: float = 4, **kw: Any
) -> SmscProvider:
    options: dict[str, Any] = {"login": LOGIN, "password": PASSWORD, "callback_secret": fake.secret, **kw}
    return SmscProvider(base_url=fake.base_url, timeout=timeout, deadline=deadline, **options)


def deliver(provider: SmscProvider, form: list[tuple[str, str]] | None) -> list[CallReport]:
    """The handler callback reaching the site, read by the provider."""
    return provider.parse_callback(RequestFactory().post("/callauth/callback/smsc/", dict(form or [])))


class _Phone:
    """The contract's fake: SMSC's fake plus the callback it sends, delivered to the site."""

    def __init__(self, fake: FakeSmsc, provider: SmscProvider) -> None:
        self._fake, self._provider = fake, provider

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fake, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "lifetime":
            self._fake.lifetime = value
        else:
            super().__setattr__(name, value)

    def make_call(self, call_to: str, caller: str, *, lose_webhook: bool = False) -> None:
        deliver(self._provider, self._fake.callback_for(call_to, caller))


class TestContract(ProviderContract):
    """SMSC passes the contract every provider passes (tests/provider_contract.py)."""

    @pytest.fixture(autouse=True)
    def _fake(self, fake_smsc: FakeSmsc) -> None:
        self.smsc = fake_smsc
        self.fake = _Phone(fake_smsc, client_for(fake_smsc))

    def make_provider(self, **kw: Any) -> SmscProvider:
        return client_for(self.smsc, **kw)

    @pytest.mark.parametrize(("status", "body", "error", "no_call_set_up"), HTTP_FAILURES)
    def test_start_failures(self, status: int, body: str, error: type[ProviderError], no_call_set_up: bool) -> None:
        self.smsc.fail_next(status, body)
        with pytest.raises(ProviderError) as info:
            self.make_provider(backup_url=self.smsc.base_url).start(PHONE, None)
        assert isinstance(info.value, error)
        assert info.value.no_call_set_up is no_call_set_up
        assert len(self.smsc.requests) == 1  # never retried, not even on the backup host

    def test_a_stalled_answer_times_out_and_is_no_proof(self) -> None:
        self.smsc.fail_next(200, "{}", delay=2)
        with pytest.raises(ProviderUnavailable) as info:
            self.make_provider(timeout=(1, 0.3), deadline=5).start(PHONE, None)
        assert not info.value.no_call_set_up

    def test_a_closed_port_proves_no_call_was_set_up(self) -> None:
        provider = self.make_provider()
        self.smsc.stop()
        with pytest.raises(ProviderUnavailable) as info:
            provider.start(PHONE, None)
        assert info.value.no_call_set_up

    def test_the_secrets_are_in_no_log_line_exception_or_repr(self, settings: Any, caplog: Any) -> None:
        settings.CALLAUTH_PROVIDER = "smsc"
        settings.CALLAUTH_SMSC_PASSWORD = PASSWORD
        settings.CALLAUTH_SMSC_CALLBACK_SECRET = self.smsc.secret
        caplog.set_level(logging.DEBUG)
        provider = self.make_provider()
        errors: list[ProviderError] = []
        for status, body, _error, _proof in HTTP_FAILURES:
            self.smsc.fail_next(status, f"{body} {PASSWORD}" if status != 200 else body)
            try:
                provider.start(PHONE, None)
            except ProviderError as exc:
                errors.append(exc)
        self.smsc.fail_next(200, f'{{"error": "bad {PASSWORD}", "error_code": 1}}')
        with pytest.raises(ProviderError) as info:
            provider.start(PHONE, None)
        errors.append(info.value)
        deliver(provider, self.smsc.signed("79001234567", int(time.time()), secret="forged"))
        texts = [caplog.text, repr(provider)]
        for exc in errors:
            assert (exc.__context__, exc.__cause__) == (None, None)
            texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        for text in texts:
            assert PASSWORD not in text and self.smsc.secret not in text


@pytest.fixture
def provider(fake_smsc: FakeSmsc) -> SmscProvider:
    return client_for(fake_smsc)


def test_start_posts_the_credentials_in_the_body_never_in_the_url(fake_smsc: FakeSmsc, provider: SmscProvider) -> None:
    started = provider.start(PHONE, None)
    (asked,) = fake_smsc.requests
    assert (asked.method, asked.path, asked.params) == ("POST", "/sys/wait_call.php", {})
    assert asked.body == {"login": LOGIN, "psw": PASSWORD, "phone": "79001234567", "fmt": "3", "charset": "utf-8"}
    assert started.call_to == "+" + fake_smsc.waits[0].call_to
    assert started.provider_id == provider_id_for(PHONE) and "9001234567" not in started.provider_id


def test_an_api_key_is_sent_instead_of_login_and_password(fake_smsc: FakeSmsc) -> None:
    client_for(fake_smsc, login="", password="", apikey=APIKEY).start(PHONE, None)
    assert fake_smsc.requests[0].body["apikey"] == APIKEY
    assert "login" not in fake_smsc.requests[0].body and "psw" not in fake_smsc.requests[0].body


def test_without_credentials_nothing_is_asked(fake_smsc: FakeSmsc) -> None:
    with pytest.raises(ProviderConfigurationError) as info:
        client_for(fake_smsc, login="", password="").start(PHONE, None)
    assert info.value.no_call_set_up and fake_smsc.requests == []


@pytest.mark.parametrize(
    ("code", "error", "no_call_set_up"),
    [
        (1, ProviderRejected, True),
        (2, ProviderConfigurationError, True),
        (3, ProviderRejected, True),
        (4, ProviderRateLimited, True),
        (5, ProviderRejected, True),
        (7, ProviderRejected, True),
        (9, ProviderRateLimited, True),
        ("8", ProviderRejected, True),
        (None, ProviderRejected, True),
    ],
)
def test_each_error_code_raises_its_error(
    fake_smsc: FakeSmsc, provider: SmscProvider, code: Any, error: type[ProviderError], no_call_set_up: bool
) -> None:
    fake_smsc.fail_next(
        200, f'{{"error": "refused", "error_code": {"null" if code is None else repr(code).replace(chr(39), chr(34))}}}'
    )
    with pytest.raises(ProviderError) as info:
        provider.start(PHONE, None)
    assert type(info.value) is error and info.value.no_call_set_up is no_call_set_up


@pytest.mark.parametrize(
    "answer",
    [
        '{"phone": "79001234567x"}',
        '{"phone": true}',
        '{"phone": "78091234567"}',
        '{"all_phones": ["74951234567"]}',
        "{}",
    ],
)
def test_a_start_answer_without_a_number_to_call_is_refused(
    fake_smsc: FakeSmsc, provider: SmscProvider, answer: str
) -> None:
    fake_smsc.fail_next(200, answer)
    with pytest.raises(ProviderMalformedAnswer):
        provider.start(PHONE, None)


def test_a_signed_callback_after_the_start_names_the_caller(fake_smsc: FakeSmsc, provider: SmscProvider) -> None:
    started = provider.start(PHONE, None)
    form = fake_smsc.callback_for(started.call_to, PHONE)
    assert deliver(provider, form) == [CallReport(caller=PHONE, provider_id=started.provider_id)]
    assert provider.check(started.provider_id) == CallReport(caller=PHONE, provider_id=started.provider_id)


def test_a_second_start_for_a_phone_with_a_live_flow_asks_smsc_nothing(
    fake_smsc: FakeSmsc, provider: SmscProvider
) -> None:
    provider.start(PHONE, None)
    with pytest.raises(SmscPhoneBusy) as refused:
        provider.start(PHONE, None)
    assert refused.value.no_call_set_up and refused.value.error.code == "provider_unavailable"
    provider.start(OTHER_PHONE, None)  # another phone is free
    assert [r.body["phone"] for r in fake_smsc.requests] == ["79001234567", OTHER_PHONE[1:]]


def test_a_start_failing_frees_the_phone(fake_smsc: FakeSmsc, provider: SmscProvider) -> None:
    fake_smsc.fail_next(200, "{}")
    with pytest.raises(ProviderMalformedAnswer):
        provider.start(PHONE, None)
    provider.start(PHONE, None)


def test_a_new_start_forgets_the_call_an_ended_flow_saw(fake_smsc: FakeSmsc, provider: SmscProvider) -> None:
    started = provider.start(PHONE, None)
    deliver(provider, fake_smsc.callback_for(started.call_to, PHONE))
    caches[app_settings.CACHE].delete("callauth:smsc:live:" + started.provider_id)  # that flow ended
    provider.start(PHONE, None)
    assert provider.check(started.provider_id) == CallReport(caller=None, provider_id=started.provider_id)


def test_a_callback_by_get_is_read_too(fake_smsc: FakeSmsc, provider: SmscProvider) -> None:
    started = provider.start(PHONE, None)
    form = dict(fake_smsc.callback_for(started.call_to, PHONE) or [])
    assert provider.parse_callback(RequestFactory().get("/", form))[0].caller == PHONE


@pytest.mark.parametrize(
    "tamper",
    [
        lambda form, fake: fake.signed("79001234567", int(time.time()), secret="forged"),  # not our secret
        lambda form, fake: [*form[:3], ("md5", "")],  # unsigned
        lambda form, fake: [("waitcall", "0"), *form[1:]],  # not a wait_call report
        lambda form, fake: fake.signed("79001234567", int(time.time()) - 3600),  # a replay from before the start
        lambda form, fake: fake.signed("7900123456x", int(time.time())),
        lambda form, fake: fake.signed("79001234567", 0)[:2] + [("ts", "soon"), ("md5", "x")],
        lambda form, fake: fake.signed("79007654321", int(time.time())),  # a phone we started nothing for
    ],
)
def test_a_callback_that_is_not_signed_or_not_ours_reports_nothing(
    fake_smsc: FakeSmsc, provider: SmscProvider, tamper: Any
) -> None:
    started = provider.start(PHONE, None)
    form = fake_smsc.callback_for(started.call_to, PHONE) or []
    assert deliver(provider, tamper(form, fake_smsc)) == []
    assert provider.check(started.provider_id) == CallReport(caller=None, provider_id=started.provider_id)


def test_without_a_callback_secret_no_callback_is_believed(fake_smsc: FakeSmsc) -> None:
    provider = client_for(fake_smsc, callback_secret="")
    started = provider.start(PHONE, None)
    assert deliver(provider, fake_smsc.callback_for(started.call_to, PHONE)) == []
    assert not provider.check(started.provider_id).called


def test_an_unreadable_callback_body_reports_nothing(provider: SmscProvider) -> None:
    request = RequestFactory().post("/", b"\xff", content_type="multipart/form-data; boundary=")
    assert provider.parse_callback(request) == []


def test_a_stored_id_that_is_not_an_id_is_refused(provider: SmscProvider) -> None:
    with pytest.raises(ProviderMalformedAnswer):
        provider.check("../etc")


def test_a_call_from_another_phone_sends_no_callback(fake_smsc: FakeSmsc, provider: SmscProvider) -> None:
    started = provider.start(PHONE, None)
    assert fake_smsc.callback_for(started.call_to, OTHER_PHONE) is None


def test_balance_reads_the_amount_and_currency(fake_smsc: FakeSmsc, provider: SmscProvider) -> None:
    assert provider.balance() == ProviderBalance(amount=Decimal("84.75"), currency="RUR")
    assert fake_smsc.requests[0].body["cur"] == "1"


@pytest.mark.parametrize(("balance", "currency"), [("lots", "RUR"), ("84.75", None), ("NaN", "RUR")])
def test_a_balance_answer_without_amount_or_currency_is_refused(
    fake_smsc: FakeSmsc, provider: SmscProvider, balance: str, currency: str | None
) -> None:
    fake_smsc.balance, fake_smsc.currency = balance, currency
    with pytest.raises(ProviderMalformedAnswer):
        provider.balance()


def test_balance_asks_the_backup_host_when_the_main_one_fails(fake_smsc: FakeSmsc) -> None:
    with FakeSmsc() as backup:
        provider = client_for(fake_smsc, backup_url=backup.base_url)
        fake_smsc.fail_next(503, "busy")
        assert provider.balance().amount == Decimal("84.75")
        assert [len(fake_smsc.requests), len(backup.requests)] == [1, 1]
        fake_smsc.fail_next(429, "")
        with pytest.raises(ProviderRateLimited):
            provider.balance()
        assert len(backup.requests) == 1  # a rate limit is not deepened elsewhere


def test_balance_without_a_backup_host_raises(fake_smsc: FakeSmsc, provider: SmscProvider) -> None:
    fake_smsc.fail_next(503, "busy")
    with pytest.raises(ProviderUnavailable):
        provider.balance()


def test_settings_and_checks(settings: Any) -> None:
    settings.CALLAUTH_SMSC_LOGIN = LOGIN
    settings.CALLAUTH_SMSC_PASSWORD = PASSWORD
    settings.CALLAUTH_SMSC_CALLBACK_SECRET = "s"
    assert SmscProvider.check_settings() == []
    built = SmscProvider.from_settings()
    assert built.awaits_callback and repr(built) == "<SmscProvider https://smsc.ru/>"
    assert list(SmscProvider.secrets()) == [PASSWORD, "", "s"]
    settings.CALLAUTH_SMSC_PASSWORD = ""
    assert [message.id for message in SmscProvider.check_settings()] == ["callauth.E003"]
    settings.CALLAUTH_SMSC_APIKEY = APIKEY
    assert SmscProvider.check_settings() == []
