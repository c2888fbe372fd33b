"""The token never reaches log output, whoever logs it (urllib3 prints request paths at DEBUG)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from django_callauth.redaction import REDACTED_LOGGERS, TokenRedactingFilter, install_log_redaction, redact

TOKEN = "4ea13fbf-f5a3-4084-8b01-9733cd6fd0b1"


class Carrier:
    """A non-string log argument whose text carries the token (like a requests exception)."""

    def __str__(self) -> str:
        return f"HTTPSConnectionPool: Max retries exceeded with url: /api/v1/authcalls/{TOKEN}/x"


def record(msg: object, args: Any = (), exc_info: Any = None) -> logging.LogRecord:
    return logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1, msg, args, exc_info)


@pytest.fixture
def token(settings: Any) -> str:
    settings.CALLAUTH_TELEFON_IP_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def bare_loggers() -> Iterator[None]:
    """The loggers as before ``AppConfig.ready()`` installed the filter; restored afterwards."""
    saved = {name: list(logging.getLogger(name).filters) for name in REDACTED_LOGGERS}
    for name, filters in saved.items():
        logging.getLogger(name).filters = [f for f in filters if not isinstance(f, TokenRedactingFilter)]
    yield
    for name, filters in saved.items():
        logging.getLogger(name).filters = filters


def test_redact_replaces_every_occurrence() -> None:
    assert redact(f"/a/{TOKEN}/b?t={TOKEN}", [TOKEN]) == "/a/***/b?t=***"


def test_redact_skips_empty_secrets_and_prefers_the_longest() -> None:
    assert redact("abcdef", ["", "abc", "abcdef"]) == "***"
    assert redact("abcdef", []) == "abcdef"
    assert redact("abcdef", [""]) == "abcdef"


def test_filter_redacts_urllib3s_request_line(token: str) -> None:
    # The exact call urllib3's connectionpool makes for every request.
    rec = record(
        '%s://%s:%s "%s %s %s" %s %s',
        (
            "https",
            "api.telefon-ip.ru",
            443,
            "GET",
            f"/api/v1/authcalls/{token}/reverse_auth_phone_get?phone=89001234567",
            "HTTP/1.1",
            200,
            123,
        ),
    )
    assert TokenRedactingFilter().filter(rec) is True
    assert (
        rec.getMessage() == 'https://api.telefon-ip.ru:443 "GET /api/v1/authcalls/***/reverse_auth_phone_get'
        '?phone=89001234567 HTTP/1.1" 200 123'
    )


def test_filter_redacts_the_message_and_non_string_args_only_when_needed(token: str) -> None:
    rec = record(f"url {token} failed after %d tries: %s", (3, Carrier()))
    TokenRedactingFilter().filter(rec)
    assert rec.args == (3, "HTTPSConnectionPool: Max retries exceeded with url: /api/v1/authcalls/***/x")
    assert (
        rec.getMessage() == "url *** failed after 3 tries: "
        "HTTPSConnectionPool: Max retries exceeded with url: /api/v1/authcalls/***/x"
    )


def test_filter_redacts_a_non_string_message(token: str) -> None:
    rec = record(Carrier())
    TokenRedactingFilter().filter(rec)
    assert rec.getMessage() == "HTTPSConnectionPool: Max retries exceeded with url: /api/v1/authcalls/***/x"


def test_filter_redacts_mapping_args(token: str) -> None:
    rec = record("%(url)s %(n)d", ({"url": f"/{token}/", "n": 5},))
    TokenRedactingFilter().filter(rec)
    assert rec.getMessage() == "/***/ 5"


def test_filter_redacts_a_logged_traceback(token: str) -> None:
    try:
        raise ValueError(f"bad url /{token}/")
    except ValueError:
        rec = record("failed", exc_info=sys.exc_info())
    TokenRedactingFilter().filter(rec)
    text = logging.Formatter().format(rec)
    assert "ValueError: bad url /***/" in text
    assert token not in text


def test_filter_reads_the_token_when_it_runs(settings: Any) -> None:
    settings.CALLAUTH_TELEFON_IP_TOKEN = "first-token"
    filt = TokenRedactingFilter()
    settings.CALLAUTH_TELEFON_IP_TOKEN = "second-token"
    rec = record("first-token second-token")
    filt.filter(rec)
    assert rec.getMessage() == "first-token ***"


def test_filter_without_a_token_changes_nothing(settings: Any) -> None:
    settings.CALLAUTH_TELEFON_IP_TOKEN = ""
    args = ("a", Carrier())
    rec = record("x %s %s", args)
    assert TokenRedactingFilter().filter(rec) is True
    assert (rec.msg, rec.args) == ("x %s %s", args)


@pytest.mark.usefixtures("bare_loggers")
def test_install_log_redaction_is_idempotent(token: str, caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    install_log_redaction()
    for name in ("urllib3.connectionpool", "django_callauth"):
        assert sum(isinstance(f, TokenRedactingFilter) for f in logging.getLogger(name).filters) == 1
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    logging.getLogger("urllib3.connectionpool").debug("GET %s", f"/api/v1/authcalls/{token}/x")
    logging.getLogger("django_callauth").warning(f"oops {token}")
    assert [r.getMessage() for r in caplog.records] == ["GET /api/v1/authcalls/***/x", "oops ***"]
