"""The contract every provider passes: one suite, inherited by each provider's test module.

``ProviderContract`` is what any provider promises through the interface of
``CallAuthProvider``: a start hands out a number anyone may be sent to call, a check is
pending until the call, then reports it (a caller, or the provider's vouch), and never
confirms after the number expired or for a call from another phone. ``HttpProviderContract``
adds what a provider reached over HTTP promises on every failure: the right error class,
starts never retried, malformed answers never confirming, the secret never in a log line,
an exception, its traceback or its ``repr``.

A test class inherits a mixin and provides, as fixtures or attributes, ``fake`` (a loopback
fake: ``make_call``, ``fail_next``, ``lifetime``, ``requests``) and ``make_provider`` (one
pointed at it), plus the provider's own garbage answers (``wrong_start_answers`` and
``wrong_check_answers``). docs/writing-a-provider.rst shows a whole one.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from django_callauth.phones import parse_provider_phone
from django_callauth.providers import BUILTIN_PROVIDERS
from django_callauth.providers.base import (
    CallAuthProvider,
    CallReport,
    ProviderConfigurationError,
    ProviderError,
    ProviderMalformedAnswer,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    StartedCall,
    WebhookStyle,
)
from tests.helpers import OTHER_PHONE, PHONE

ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
WEBHOOK = "https://site.example/callauth/webhook/flow/s3cr3t/"


def no_call(report: CallReport) -> bool:
    return not report.called


class ProviderContract:
    """What every provider promises; ``fake.make_call`` plays the phone."""

    fake: Any
    make_provider: Callable[..., CallAuthProvider]

    def starts(self, provider: CallAuthProvider) -> list[StartedCall]:
        """A start in each style the provider has: without a webhook, and with one if it takes one."""
        started = [provider.start(PHONE, None)]
        if provider.webhook_style is WebhookStyle.PER_FLOW:
            started.append(provider.start(PHONE, WEBHOOK))
        return started

    def test_it_declares_what_the_app_needs(self) -> None:
        cls = type(self.make_provider())
        assert cls.name and cls.name == cls.name.strip()
        assert cls.name not in BUILTIN_PROVIDERS or BUILTIN_PROVIDERS[cls.name].endswith("." + cls.__name__)
        assert isinstance(cls.lifetime, int) and cls.lifetime > 0
        assert all(name.startswith("CALLAUTH_") for name in cls.required_settings)
        assert not (cls.vouches_for_caller and cls.simulated)

    def test_start_hands_out_a_number_to_call_in_each_style(self) -> None:
        for started in self.starts(self.make_provider()):
            assert parse_provider_phone(started.call_to) == started.call_to  # canonical, never premium-rate
            assert ID.fullmatch(started.provider_id)

    def test_check_is_pending_until_the_call_then_reports_it(self) -> None:
        provider = self.make_provider()
        for started in self.starts(provider):
            assert provider.check(started.provider_id) == CallReport(caller=None, provider_id=started.provider_id)
            self.fake.make_call(started.call_to, PHONE, lose_webhook=True)
            report = provider.check(started.provider_id)
            assert report.provider_id == started.provider_id
            if provider.simulated:
                assert no_call(report)  # simulated calls reach the flow directly, never through check
            elif provider.vouches_for_caller:
                assert report == CallReport(caller=None, provider_id=started.provider_id, vouched=True)
            else:
                assert report == CallReport(caller=PHONE, provider_id=started.provider_id)

    def test_a_call_from_another_phone_never_confirms_the_phone(self) -> None:
        provider = self.make_provider()
        started = provider.start(PHONE, None)
        self.fake.make_call(started.call_to, OTHER_PHONE, lose_webhook=True)
        report = provider.check(started.provider_id)
        assert not report.vouched
        assert report.caller in (None, OTHER_PHONE)  # named: flows/reports.py fails the flow as a mismatch

    def test_a_call_after_the_number_expired_is_no_confirmation(self) -> None:
        self.fake.lifetime = 0.2
        provider = self.make_provider()
        started = provider.start(PHONE, None)
        time.sleep(0.3)
        self.fake.make_call(started.call_to, PHONE, lose_webhook=True)
        assert no_call(provider.check(started.provider_id))


#: (HTTP status, body, the error a start raises, whether it proves no call was set up).
HTTP_FAILURES = [
    (400, "<html>Bad Request</html>", ProviderRejected, False),
    (404, "", ProviderRejected, False),
    (401, "{}", ProviderConfigurationError, True),
    (403, "<html>Forbidden</html>", ProviderConfigurationError, True),
    (429, "", ProviderRateLimited, True),
    (503, "<html>busy</html>", ProviderUnavailable, True),
    (500, "oops", ProviderUnavailable, False),
    (502, "<html>Bad Gateway</html>", ProviderUnavailable, False),
    (302, "", ProviderMalformedAnswer, False),
    (200, "<html>a proxy page</html>", ProviderMalformedAnswer, False),
    (200, "", ProviderMalformedAnswer, False),
    (200, "[1, 2]", ProviderMalformedAnswer, False),
    (200, " " * (64 * 1024 + 1), ProviderMalformedAnswer, False),
]


class HttpProviderContract(ProviderContract):
    """What a provider reached over HTTP promises on every failure."""

    #: Start answers (200, JSON) with the right keys but wrong types or values.
    wrong_start_answers: list[Any]
    #: Check answers (200, JSON) that must never confirm, even after a real call.
    wrong_check_answers: list[Any]
    secret: str

    @pytest.mark.parametrize(("status", "body", "error", "no_call_set_up"), HTTP_FAILURES)
    def test_start_failures(self, status: int, body: str, error: type[ProviderError], no_call_set_up: bool) -> None:
        self.fake.fail_next(status, body)
        with pytest.raises(ProviderError) as info:
            self.make_provider().start(PHONE, None)
        assert isinstance(info.value, error)
        assert info.value.no_call_set_up is no_call_set_up
        assert len(self.fake.requests) == 1  # a start is billed: never retried, never redirected

    @pytest.mark.parametrize(("status", "body", "error", "no_call_set_up"), HTTP_FAILURES)
    def test_check_failures_never_confirm(self, status: int, body: str, error: Any, no_call_set_up: bool) -> None:
        provider = self.make_provider()
        started = provider.start(PHONE, None)
        self.fake.make_call(started.call_to, PHONE, lose_webhook=True)
        self.fake.fail_next(status, body)
        self.fake.fail_next(status, body)  # a check may be retried once
        try:
            report = provider.check(started.provider_id)
        except ProviderError:
            return
        assert no_call(report)

    def test_wrong_types_in_a_start_answer_are_refused(self) -> None:
        for answer in self.wrong_start_answers:
            self.fake.fail_next(200, answer)
            with pytest.raises(ProviderError):
                self.make_provider().start(PHONE, None)

    def test_malformed_check_answers_never_confirm(self) -> None:
        provider = self.make_provider()
        started = provider.start(PHONE, None)
        self.fake.make_call(started.call_to, PHONE, lose_webhook=True)
        for answer in self.wrong_check_answers:
            self.fake.fail_next(200, answer)
            try:
                report = provider.check(started.provider_id)
            except ProviderError:
                continue
            assert no_call(report), answer

    def test_a_trickling_body_stops_at_the_deadline(self) -> None:
        self.fake.fail_next(200, "{" + " " * 30 + "}", delay=0.1)  # 3.2 s, byte by byte
        began = time.monotonic()
        with pytest.raises(ProviderUnavailable) as info:
            self.make_provider(timeout=(1, 1), deadline=0.6).start(PHONE, None)
        assert 0.5 < time.monotonic() - began < 1.5
        assert not info.value.no_call_set_up  # the request was sent: a call may be set up

    def test_a_stalled_answer_times_out_and_is_no_proof(self) -> None:
        self.fake.fail_next(200, "{}", delay=2)
        with pytest.raises(ProviderUnavailable) as info:
            self.make_provider(timeout=(1, 0.3), deadline=5).start(PHONE, None)
        assert not info.value.no_call_set_up

    def test_a_closed_port_proves_no_call_was_set_up(self) -> None:
        provider = self.make_provider()
        self.fake.stop()
        with pytest.raises(ProviderUnavailable) as info:
            provider.start(PHONE, None)
        assert info.value.no_call_set_up

    def test_the_secret_is_in_no_log_line_exception_or_repr(self, settings: Any, caplog: Any) -> None:
        provider = self.make_provider()
        cls = type(provider)
        # Configured as a site would: the redaction knows the secrets of the configured providers.
        settings.CALLAUTH_PROVIDER = cls.name if cls.name in BUILTIN_PROVIDERS else f"{cls.__module__}.{cls.__name__}"
        setattr(settings, next(iter(cls.required_settings)), self.secret)
        caplog.set_level(logging.DEBUG)
        started = provider.start(PHONE, None)
        errors: list[ProviderError] = []
        for status, body, _error, _proof in HTTP_FAILURES:
            self.fake.fail_next(status, f"{body} {self.secret}" if status != 200 else body)
            self.fake.fail_next(status, body)
            for action in (lambda: provider.start(PHONE, None), lambda: provider.check(started.provider_id)):
                try:
                    action()
                except ProviderError as exc:
                    errors.append(exc)
        assert errors
        texts = [caplog.text, repr(provider)]
        for exc in errors:
            assert (exc.__context__, exc.__cause__) == (None, None)
            texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        for text in texts:
            assert self.secret not in text
