"""The token never reaches log output, whoever logs it (urllib3 prints URLs at DEBUG and WARNING)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import empty

from django_callauth.conf import get_setting
from django_callauth.guards.redaction import (
    RedactingRecordFactory,
    TokenRedactingFilter,
    install_log_redaction,
    is_redacted_logger,
    mask_phone_numbers,
    redact,
    scrub_request_text,
)
from django_callauth.providers import current_secrets
from django_callauth.providers.sandbox import SandboxProvider
from tests.helpers import PHONE_FOR_PROVIDER, START_POST, TOKEN, RootLog, start


class Carrier:
    """A non-string log argument whose text carries the token (like a requests exception)."""

    def __str__(self) -> str:
        return CARRIED.replace("***", TOKEN)


CARRIED = "HTTPSConnectionPool: Max retries exceeded with url: /api/v1/authcalls/***/x"  # a Carrier, redacted


def record(msg: object, args: Any = (), exc_info: Any = None) -> logging.LogRecord:
    return logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1, msg, args, exc_info)


@pytest.fixture
def token(settings: Any) -> str:
    settings.CALLAUTH_TELEFON_IP_TOKEN = TOKEN
    return TOKEN


def redacted_loggers() -> list[logging.Logger]:
    return [
        log
        for name, log in logging.Logger.manager.loggerDict.items()
        if isinstance(log, logging.Logger) and is_redacted_logger(name)
    ]


@pytest.fixture
def bare_logging() -> Iterator[None]:
    """Logging as before ``AppConfig.ready()`` installed the redaction; restored afterwards."""
    saved_factory = logging.getLogRecordFactory()
    saved_filters = {log: list(log.filters) for log in redacted_loggers()}
    factory = saved_factory
    while isinstance(factory, RedactingRecordFactory):
        factory = factory.wrapped
    logging.setLogRecordFactory(factory)
    for log, filters in saved_filters.items():
        log.filters = [f for f in filters if not isinstance(f, TokenRedactingFilter)]
    yield
    logging.setLogRecordFactory(saved_factory)
    for log in redacted_loggers():
        log.filters = saved_filters.get(log, [f for f in log.filters if not isinstance(f, TokenRedactingFilter)])


def test_redact_replaces_every_occurrence_skips_empty_secrets_and_prefers_the_longest() -> None:
    assert redact(f"/a/{TOKEN}/b?t={TOKEN}", [TOKEN]) == "/a/***/b?t=***"
    assert redact("abcdef", ["", "abc", "abcdef"]) == "***"
    assert redact("abcdef", []) == "abcdef"
    assert redact("abcdef", [""]) == "abcdef"


def test_filter_redacts_the_message_and_non_string_args_only_when_needed(token: str) -> None:
    rec = record(f"url {token} failed after %d tries: %s", (3, Carrier()))
    TokenRedactingFilter().filter(rec)
    assert rec.args == (3, CARRIED)
    assert rec.getMessage() == f"url *** failed after 3 tries: {CARRIED}"


@pytest.mark.parametrize(
    ("msg", "args", "message"),
    [
        (Carrier(), (), CARRIED),
        ("%(url)s %(n)d", ({"url": f"/{TOKEN}/", "n": 5},), "/***/ 5"),
        (f"url /{TOKEN}/ failed", None, "url /***/ failed"),  # built by hand, or rebuilt from another process
    ],
    ids=["non-string-message", "mapping-args", "no-args"],
)
def test_filter_redacts_every_shape_of_record(token: str, msg: object, args: Any, message: str) -> None:
    rec = record(msg, args)
    TokenRedactingFilter().filter(rec)
    assert rec.getMessage() == message
    assert args is not None or rec.args is None


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


@pytest.mark.usefixtures("bare_logging")
def test_install_log_redaction_is_idempotent(token: str) -> None:
    install_log_redaction(current_secrets)
    install_log_redaction(current_secrets)
    factory = logging.getLogRecordFactory()
    assert isinstance(factory, RedactingRecordFactory)
    assert not isinstance(factory.wrapped, RedactingRecordFactory)
    names = {log.name for log in redacted_loggers()}
    assert {"urllib3", "urllib3.connection", "urllib3.connectionpool", "requests", "django_callauth"} <= names
    for log in redacted_loggers():
        assert sum(isinstance(f, TokenRedactingFilter) for f in log.filters) == 1, log.name


@pytest.mark.usefixtures("bare_logging")
def test_records_of_every_redacted_logger_reach_the_root_redacted(token: str, root_log: RootLog) -> None:
    install_log_redaction(current_secrets)
    later = f"urllib3.made_after_install_{uuid.uuid4().hex}"  # like urllib3.http2, imported on first use
    for name in ("urllib3.connection", "urllib3", "requests.adapters", later, "django_callauth.flows"):
        logging.getLogger(name).warning("url=%s", Carrier())
    assert [r.getMessage() for r in root_log.records] == [f"url={CARRIED}"] * 5


@pytest.mark.usefixtures("bare_logging")
def test_other_loggers_records_are_left_alone(token: str, root_log: RootLog) -> None:
    # Finding the token means str() on arguments: not done to objects anyone else logs.
    install_log_redaction(current_secrets)
    carrier = Carrier()
    logging.getLogger("urllib3_lookalike").warning("%s", carrier)
    (kept,) = root_log.records
    assert kept.args == (carrier,)


@pytest.mark.usefixtures("bare_logging")
def test_the_factory_installed_before_keeps_working(token: str, root_log: RootLog) -> None:
    previous = logging.getLogRecordFactory()

    def tagging(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made = previous(*args, **kwargs)
        made.tag = "kept"
        return made

    logging.setLogRecordFactory(tagging)
    install_log_redaction(current_secrets)
    logging.getLogger("urllib3.connection").warning("url=/%s/", token)
    (kept,) = root_log.records
    assert (kept.getMessage(), kept.tag) == ("url=/***/", "kept")


@pytest.mark.usefixtures("bare_logging")
def test_the_filters_still_redact_when_the_factory_is_replaced_later(token: str, root_log: RootLog) -> None:
    install_log_redaction(current_secrets)
    logging.setLogRecordFactory(logging.LogRecord)  # another library's, not chaining ours
    logging.getLogger("urllib3.connection").warning("url=/%s/", token)
    try:
        raise ValueError(f"bad url /{token}/")
    except ValueError:
        logging.getLogger("urllib3.connectionpool").exception("failed", stack_info=True)
    assert [r.getMessage() for r in root_log.records] == ["url=/***/", "failed"]
    assert "ValueError: bad url /***/" in root_log.text
    assert token not in root_log.text


def test_a_broken_str_does_not_make_logging_raise(token: str) -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    broken = Broken()
    rec = record("x %s", (broken,))
    assert TokenRedactingFilter().filter(rec) is True
    assert rec.args == (broken,)


def test_every_providers_secret_is_redacted_configured_or_not(settings: Any) -> None:
    # sms.ru's api_id too, and while telefon-ip is the one configured: a flow stays with the
    # provider that started it, so any provider's secret may reach a log line.
    settings.CALLAUTH_PROVIDER = "telefon_ip"
    settings.CALLAUTH_TELEFON_IP_TOKEN = TOKEN
    settings.CALLAUTH_SMS_RU_API_ID = "F2D79B58-A5A2-2F9E-91C8-73D12CE2E102"
    rec = record("api_id=%s token=%s", ("F2D79B58-A5A2-2F9E-91C8-73D12CE2E102", TOKEN))
    TokenRedactingFilter().filter(rec)
    assert rec.getMessage() == "api_id=*** token=***"


def test_the_secrets_of_a_configured_provider_of_a_project_are_redacted(settings: Any) -> None:
    settings.CALLAUTH_PROVIDER = ["tests.test_redaction.ProjectProvider", "sms_ru"]
    settings.CALLAUTH_PROJECT_KEY = "project-key-42"
    rec = record("key %s", ("project-key-42",))
    TokenRedactingFilter().filter(rec)
    assert rec.getMessage() == "key ***"


class ProjectProvider(SandboxProvider):
    name = "project"

    @classmethod
    def secrets(cls) -> tuple[str, ...]:
        return (str(get_setting("PROJECT_KEY", "")),)


class UnreadableProvider(SandboxProvider):
    name = "unreadable"

    @classmethod
    def secrets(cls) -> tuple[str, ...]:
        raise ImproperlyConfigured("CALLAUTH_PROJECT_KEY must be text")


def test_a_provider_whose_secrets_cannot_be_read_costs_no_other_providers_redaction(token: str, settings: Any) -> None:
    settings.CALLAUTH_PROVIDER = ["tests.test_redaction.UnreadableProvider", "telefon_ip"]
    rec = record("token %s", (TOKEN,))
    assert TokenRedactingFilter().filter(rec) is True
    assert rec.getMessage() == "token ***"


def test_a_record_logged_before_the_settings_exist_passes_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    # A library logging while the project imports its settings module: nothing can be read yet.
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    monkeypatch.setattr(django_settings, "_wrapped", empty)
    rec = record("url /%s/", ("not-a-secret",))
    assert TokenRedactingFilter().filter(rec) is True
    assert rec.getMessage() == "url /not-a-secret/"


# -- phone numbers and webhook secrets -----------------------------------------------------

FLOW_ID = "6bdaed4d-b159-4785-98ee-0cddbd3ac8cd"
WEBHOOK = f"/callauth/webhook/{FLOW_ID}/Zx9-secret_Q/"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("номер 89001234567 заблокирован", "номер +7 900 ***-**-67 заблокирован"),
        ("phone=+7 (900) 123-45-67.", "phone=+7 900 ***-**-67."),
        ("9001234567", "+7 900 ***-**-67"),
        ("call +44 20 7946 0958", "call **********58"),
    ],
)
def test_phone_numbers_are_masked_as_log_lines_show_phones(text: str, masked: str) -> None:
    assert mask_phone_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [f"flow {FLOW_ID}", "id 122760 at 2026-12-03 13:22:01", "HTTP 500", "sha 3f2a9001234567b", "v12345678901234567890"],
)
def test_what_is_no_phone_number_is_left_alone(text: str) -> None:
    assert mask_phone_numbers(text) == text


def test_a_request_is_told_without_its_webhook_secret_or_phones() -> None:
    line = f"GET {WEBHOOK}?success=True&phone=89001234567&id=5 HTTP/1.1"
    expected = f"GET /callauth/webhook/{FLOW_ID}/***/?success=True&phone=***&id=5 HTTP/1.1"
    assert scrub_request_text(line) == expected
    assert scrub_request_text("phone=%2B79001234567;caller=8+900+123-45-67") == "phone=***;caller=***"


@pytest.mark.usefixtures("bare_logging")
def test_djangos_request_records_reach_the_root_without_webhook_secrets(root_log: RootLog) -> None:
    install_log_redaction(current_secrets)
    logging.getLogger("django.request").warning("Not Found: %s", WEBHOOK)
    (logged,) = root_log.records
    assert logged.getMessage() == f"Not Found: /callauth/webhook/{FLOW_ID}/***/"
    # runserver's request lines (django.server does not propagate to the root).
    line = f"GET {WEBHOOK}?phone=89001234567 HTTP/1.1"
    served = logging.getLogRecordFactory()(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s', (line, "200", "11"), None
    )
    assert served.getMessage() == f'"GET /callauth/webhook/{FLOW_ID}/***/?phone=*** HTTP/1.1" 200 11'


@pytest.mark.usefixtures("bare_logging")
def test_djangos_request_records_keep_their_non_string_arguments(root_log: RootLog) -> None:
    # As for other loggers: no str() of what Django passes that is not text.
    install_log_redaction(current_secrets)
    carrier = Carrier()
    logging.getLogger("django.request").error("%s", carrier)
    (kept,) = root_log.records
    assert kept.args == (carrier,)


@pytest.mark.django_db
def test_a_provider_error_echoing_the_number_is_logged_masked(client: Any, telefon_ip_api: Any, root_log: Any) -> None:
    refusal = {"success": False, "error": f"номер {PHONE_FOR_PROVIDER} в чёрном списке", "data": {}}
    telefon_ip_api.post(START_POST, json=refusal)
    assert start(client).status_code == 502
    assert PHONE_FOR_PROVIDER[1:] not in root_log.text
    assert "номер +7 900 ***-**-67 в чёрном списке" in root_log.text
