"""The telefon-ip client against the loopback fake: real sockets, urllib3 and webhooks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from django.test import RequestFactory

from django_callauth.guards.redaction import install_log_redaction
from django_callauth.providers import current_secrets
from django_callauth.providers.base import (
    CallReport,
    ProviderError,
)
from django_callauth.providers.telefon_ip import TelefonIpProvider
from tests.fake_telefon_ip import FakeTelefonIp
from tests.helpers import PHONE, RootLog
from tests.provider_contract import HttpProviderContract


def client_for(fake: FakeTelefonIp, *, timeout: tuple[float, float] = (2, 2), deadline: float = 4) -> TelefonIpProvider:
    return TelefonIpProvider(token=fake.token, base_url=fake.base_url, timeout=timeout, deadline=deadline)


@pytest.fixture
def provider(fake_telefon_ip: FakeTelefonIp) -> TelefonIpProvider:
    return client_for(fake_telefon_ip)


class WebhookReceiver:
    """The site's side of the webhook: records each request the fake provider makes."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                receiver.received.append((self.command, self.path))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _record

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    yield hook
    hook.close()


@pytest.mark.parametrize(
    ("method", "hook_path", "separator"),
    [("GET", "/callauth/webhook/s3cr3t/", "?"), ("POST", "/hook/?flow=1", "&")],
)
def test_the_webhook_is_called_like_the_provider_does(
    fake_telefon_ip: FakeTelefonIp,
    provider: TelefonIpProvider,
    receiver: WebhookReceiver,
    method: str,
    hook_path: str,
    separator: str,
) -> None:
    fake_telefon_ip.webhook_method = method
    started = provider.start(PHONE, receiver.url + hook_path)
    assert receiver.received == []
    assert fake_telefon_ip.make_call(started.call_to, PHONE) == 200
    expected = f"{hook_path}{separator}success=True&phone=89001234567&id={started.provider_id}"
    assert receiver.received == [(method, expected)]
    webhook_request = RequestFactory().generic(method, expected)
    assert provider.parse_webhook(webhook_request) == CallReport(caller=PHONE, provider_id=started.provider_id)


@pytest.fixture
def urllib3_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.set_level(logging.DEBUG, logger="django_callauth")
    return caplog


def flow_with_failures(fake: FakeTelefonIp, provider: TelefonIpProvider) -> str:
    """A start, a pending check and a check that fails twice: the provider id."""
    started = provider.start(PHONE, None)
    provider.check(started.provider_id)
    fake.fail_next(503, "busy")
    fake.fail_next(503, "busy")
    with pytest.raises(ProviderError):
        provider.check(started.provider_id)
    return started.provider_id


def test_urllib3_logs_the_token_when_no_token_is_configured_to_redact(
    settings: Any,
    fake_telefon_ip: FakeTelefonIp,
    provider: TelefonIpProvider,
    urllib3_debug: pytest.LogCaptureFixture,
) -> None:
    # The premise of the next test: unless the filter knows the token, urllib3 prints it at DEBUG.
    settings.CALLAUTH_TELEFON_IP_TOKEN = ""
    flow_with_failures(fake_telefon_ip, provider)
    pool = [r.getMessage() for r in urllib3_debug.records if r.name == "urllib3.connectionpool"]
    assert any(f"/api/v1/authcalls/{fake_telefon_ip.token}/reverse_auth_phone_get" in m for m in pool)


def test_no_log_record_carries_the_token_with_redaction(
    settings: Any,
    fake_telefon_ip: FakeTelefonIp,
    provider: TelefonIpProvider,
    urllib3_debug: pytest.LogCaptureFixture,
) -> None:
    settings.CALLAUTH_TELEFON_IP_TOKEN = fake_telefon_ip.token
    install_log_redaction(current_secrets)  # done by AppConfig.ready() already; idempotent
    provider_id = flow_with_failures(fake_telefon_ip, provider)
    messages = [r.getMessage() for r in urllib3_debug.records]
    assert [m for m in messages if fake_telefon_ip.token in m] == []
    request_line = '"GET /api/v1/authcalls/***/reverse_auth_phone_get?phone=89001234567 HTTP/1.1" 200 '
    assert any(request_line in m for m in messages)
    base = fake_telefon_ip.base_url
    assert f"telefon-ip GET {base}***/reverse_auth_phone_check/{provider_id}/: HTTP 503, server error" in messages


@pytest.mark.parametrize("level", [logging.WARNING, logging.DEBUG], ids=logging.getLevelName)
def test_urllib3s_broken_header_warning_reaches_the_root_without_the_token(
    settings: Any,
    fake_telefon_ip: FakeTelefonIp,
    provider: TelefonIpProvider,
    root_log: RootLog,
    level: int,
) -> None:
    # No DEBUG needed: urllib3.connection warns with the full URL (and a traceback), and the
    # record propagates to the root's handlers past any filter on the "urllib3" logger.
    settings.CALLAUTH_TELEFON_IP_TOKEN = fake_telefon_ip.token
    fake_telefon_ip.broken_header_line = "this line has no colon"
    logging.getLogger().setLevel(level)
    assert provider.start(PHONE, None).call_to.startswith("+7")  # the headers before the line still count
    text = root_log.text
    url = f"{fake_telefon_ip.base_url}***/reverse_auth_phone_get?phone=89001234567"
    assert f"urllib3.connection WARNING Failed to parse headers (url={url})" in text
    assert "this line has no colon" in text  # urllib3's traceback, formatted and redacted
    if level == logging.DEBUG:
        assert '"GET /api/v1/authcalls/***/reverse_auth_phone_get?phone=89001234567 HTTP/1.1" 200' in text
    assert fake_telefon_ip.token not in text


class TestContract(HttpProviderContract):
    """telefon-ip passes the contract every provider passes (tests/provider_contract.py)."""

    wrong_start_answers: ClassVar[list[Any]] = [
        '{"success": true, "data": {"auth_phone": true, "id": [1]}}',
        '{"success": true, "data": {"auth_phone": "78091234567", "id": 5}}',  # premium-rate
        '{"success": "yes", "data": {"auth_phone": "79644115786", "id": 5}}',
        '{"success": true, "data": []}',
        '{"success": true, "data": {"auth_phone": 7.9e10, "id": 5.5}}',
    ]
    wrong_check_answers: ClassVar[list[Any]] = [
        '{"success": true, "data": {"phone": 89001234567.0}}',
        '{"success": "false", "data": {"phone": "89001234567"}}',
        '{"success": true, "data": {"phone": "89001234567", "id": true}}',
        '{"success": true, "data": {"phone": "89001234567", "status": "expired"}}',
        '{"success": true, "data": {"phone": ["89001234567"]}}',
        '{"success": true, "data": "89001234567"}',
        "[]",
        "null",
    ]

    @pytest.fixture(autouse=True)
    def _fake(self, fake_telefon_ip: FakeTelefonIp) -> None:
        self.fake = fake_telefon_ip
        self.secret = fake_telefon_ip.token

    def make_provider(self, *, timeout: tuple[float, float] = (2, 2), deadline: float = 4) -> TelefonIpProvider:
        return client_for(self.fake, timeout=timeout, deadline=deadline)
