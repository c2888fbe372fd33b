"""The telefon-ip client against recorded answers (``responses``): every shape in docs/providers/telefon-ip.rst.

What the provider is asked, how each of its answers is read, and that the token (in the URL
path) shows up in no exception, traceback or log line. How statuses, bodies, timeouts and
retries are classified is the shared client's (test_providers_http.py).
"""

from __future__ import annotations

import json
import logging
import traceback
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from django_callauth.providers.base import (
    CallReport,
    ProviderBalance,
    ProviderConfigurationError,
    ProviderError,
    ProviderMalformedAnswer,
    ProviderRejected,
    ProviderUnavailable,
    StartedCall,
)
from django_callauth.providers.http import MAX_BODY_BYTES
from django_callauth.providers.telefon_ip import TelefonIpProvider
from tests.helpers import BASE, PHONE, START_GET, START_POST, TOKEN, check_answer, check_url, start_answer

CHECK = check_url()
REDACTED_CHECK = f"GET {BASE}***/reverse_auth_phone_check/122760/"
REDACTED_START = f"GET {BASE}***/reverse_auth_phone_get"
WEBHOOK = "https://site.example/callauth/webhook/s3cr3t-path/"

# The doc's own samples (its start sample is missing a comma; start_answer() is what it means).
START_OK = start_answer()
CHECK_OK = check_answer("89243555100")
NOT_FOUND: dict[str, Any] = {"success": False, "error": "id record not found", "data": {}}


@pytest.fixture
def provider() -> TelefonIpProvider:
    return TelefonIpProvider(token=TOKEN, base_url=BASE, timeout=(3.05, 5.0), deadline=10.0)


def sent_kwargs(call: Any) -> dict[str, Any]:
    """What requests handed its adapter: timeout, stream (recorded by ``responses``)."""
    kwargs: dict[str, Any] = call.request.req_kwargs
    return kwargs


def raised(call: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        call()
    return info.value


# --- start: what the provider is asked -------------------------------------------------------


def test_start_without_webhook_gets_with_the_phone_in_8_form(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock
) -> None:
    telefon_ip_api.get(START_GET, json=START_OK)
    assert provider.start(PHONE, None) == StartedCall(call_to="+79644115786", provider_id="122760")
    (call,) = telefon_ip_api.calls
    assert call.request.method == "GET"
    assert call.request.url == START_GET + "?phone=89001234567"
    assert call.request.body is None


def test_start_with_webhook_posts_json(provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock) -> None:
    telefon_ip_api.post(START_POST, json=START_OK)
    assert provider.start(PHONE, WEBHOOK) == StartedCall(call_to="+79644115786", provider_id="122760")
    (call,) = telefon_ip_api.calls
    assert call.request.method == "POST"
    assert call.request.url == START_POST
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body or b"") == {"phone": "89001234567", "webhook": WEBHOOK}


def test_from_settings_reads_every_setting(settings: Any, telefon_ip_api: responses.RequestsMock) -> None:
    settings.CALLAUTH_TELEFON_IP_TOKEN = "other-token"
    settings.CALLAUTH_TELEFON_IP_URL = "https://proxy.example/authcalls"  # no slash: conf adds it
    settings.CALLAUTH_TELEFON_IP_TIMEOUT = (1, 2)
    settings.CALLAUTH_TELEFON_IP_DEADLINE = 1.5
    telefon_ip_api.get("https://proxy.example/authcalls/other-token/reverse_auth_phone_get", json=START_OK)
    TelefonIpProvider.from_settings().start(PHONE, None)
    connect, read = sent_kwargs(telefon_ip_api.calls[0])["timeout"]
    assert (connect, read) == (1.0, pytest.approx(1.5, abs=0.1))  # read capped by the deadline


def test_one_timeout_is_both_the_connect_and_the_read_timeout(
    settings: Any, telefon_ip_api: responses.RequestsMock
) -> None:
    settings.CALLAUTH_TELEFON_IP_TIMEOUT = 4  # as requests takes it; this once started no login at all
    settings.CALLAUTH_TELEFON_IP_TOKEN = TOKEN
    telefon_ip_api.get(START_GET, json=START_OK)
    assert TelefonIpProvider.from_settings().start(PHONE, None).provider_id == "122760"
    assert sent_kwargs(telefon_ip_api.calls[0])["timeout"] == (4.0, 4.0)


ACCEPTED_STARTS = [
    # The doc's url_link dials 89644078713; only the validated auth_phone counts.
    pytest.param(start_answer(url_link="<script>alert(1)</script>", url_image="javascript:x"), "122760", id="url_link"),
    *[
        pytest.param(start_answer(id=value), str(value), id=f"id-{kind}")
        for kind, value in [("int", 122760), ("text", "122760"), ("letters", "ab_C-9"), ("64", "x" * 64), ("0", 0)]
    ],
    *[
        pytest.param(start_answer(auth_phone=phone), "122760", id=f"auth_phone-{phone!r}")
        for phone in ["89644115786", "+79644115786", 79644115786, "7 964 411-57-86"]
    ],
    *[
        pytest.param({**START_OK, "success": success}, "122760", id=f"success-{success!r}")
        for success in [True, "True", "true", 1]
    ],
]


@pytest.mark.parametrize(("answer", "provider_id"), ACCEPTED_STARTS)
def test_start_accepts_every_documented_form(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock, answer: dict[str, Any], provider_id: str
) -> None:
    telefon_ip_api.get(START_GET, json=answer)
    assert provider.start(PHONE, None) == StartedCall(call_to="+79644115786", provider_id=provider_id)


UNUSABLE_IDS = [True, False, "", "x" * 65, "12/../3", "12 3", "12\n", None, 1.5, [1], {"id": 1}]
NOT_PHONES = ["", None, "12345", "79644115786x", "+12025550100", "77001234567", "7964411578६", True, ["79644115786"]]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        *[("id", value, "telefon-ip's start answer has no valid id.") for value in UNUSABLE_IDS],
        *[("auth_phone", value, "telefon-ip's start answer has no valid number to call.") for value in NOT_PHONES],
    ],
)
def test_start_refuses_an_unusable_id_or_number_to_call(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock, field: str, value: object, message: str
) -> None:
    telefon_ip_api.get(START_GET, json=start_answer(**{field: value}))
    error = raised(lambda: provider.start(PHONE, None))
    assert (type(error), str(error)) == (ProviderMalformedAnswer, message)


@pytest.mark.parametrize(
    ("status", "answer", "reason"),
    [
        (
            200,
            {"success": False, "error": "Недостаточно средств\n" + "x" * 1000, "data": []},
            "Недостаточно средств " + "x" * 79 + "…",
        ),
        (200, {"success": False}, "no reason given"),
        (400, {"success": False, "error": "phone is invalid", "data": {}}, "phone is invalid"),
        (400, START_OK, "no reason given"),
        (404, "<h1>Not Found</h1>", "no reason given"),
        (422, "", "no reason given"),
    ],
    ids=["truncated_on_one_line", "no_error_text", "400", "400_despite_success", "404", "422"],
)
def test_start_rejection_shows_the_providers_error(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock, status: int, answer: Any, reason: str
) -> None:
    body = answer if isinstance(answer, str) else json.dumps(answer)
    telefon_ip_api.get(START_GET, status=status, body=body)
    error = raised(lambda: provider.start(PHONE, None))
    assert (type(error), str(error)) == (ProviderRejected, f"telefon-ip refused to start a call: {reason}")


NOT_TRUE = [False, "False", "false", 0, None, "yes", "", 2]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        *(({**START_OK, "success": value}, ProviderRejected) for value in NOT_TRUE),
        ({"data": START_OK["data"]}, ProviderRejected),  # no success field
        *(({"success": True, "error": "", "data": data}, ProviderMalformedAnswer) for data in [{}, [], None, "text"]),
        ({"success": True, "error": ""}, ProviderMalformedAnswer),
        ({"success": True, "error": "", "data": {"auth_phone": "79644115786"}}, ProviderMalformedAnswer),  # no id
    ],
)
def test_start_refused_unless_success_is_true_and_malformed_without_usable_data(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock, answer: dict[str, Any], error: type
) -> None:
    telefon_ip_api.get(START_GET, json=answer)
    assert type(raised(lambda: provider.start(PHONE, None))) is error


# --- answers that are not a JSON object (the shared client: test_providers_http.py) ---------


NOT_JSON = ("telefon-ip's answer is not JSON.", "HTTP 200, body is not JSON")
NOT_AN_OBJECT = ("telefon-ip's answer is not a JSON object.", "HTTP 200, JSON is not an object")


@pytest.mark.parametrize(
    ("body", "message", "log"),
    [
        ("<html><body>502 Bad Gateway</body></html>", *NOT_JSON),
        ("", *NOT_JSON),
        ("[" * MAX_BODY_BYTES, *NOT_JSON),  # too deep to parse
        ("\xff\xfe junk", *NOT_JSON),
        ("[1, 2]", *NOT_AN_OBJECT),
        ("null", *NOT_AN_OBJECT),
        ('"success"', *NOT_AN_OBJECT),
    ],
)
def test_bodies_that_are_not_a_json_object_are_malformed(
    provider: TelefonIpProvider,
    telefon_ip_api: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    body: str,
    message: str,
    log: str,
) -> None:
    telefon_ip_api.get(START_GET, body=body.encode("latin-1"))
    error = raised(lambda: provider.start(PHONE, None))
    assert (type(error), str(error)) == (ProviderMalformedAnswer, message)
    assert f"telefon-ip {REDACTED_START}: {log}" in [r.getMessage() for r in caplog.records]


def test_a_post_start_is_never_retried_either(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock
) -> None:
    telefon_ip_api.post(START_POST, status=503)
    telefon_ip_api.post(START_POST, json=START_OK)
    assert type(raised(lambda: provider.start(PHONE, WEBHOOK))) is ProviderUnavailable
    assert len(telefon_ip_api.calls) == 1


@pytest.mark.parametrize("token", ["", "has/slash", "has?query", "has space", "has%2f"])
def test_a_bad_token_fails_before_any_request(telefon_ip_api: responses.RequestsMock, token: str) -> None:
    provider = TelefonIpProvider(token=token, base_url=BASE, timeout=(1, 1), deadline=1)
    assert type(raised(lambda: provider.start(PHONE, None))) is ProviderConfigurationError
    assert type(raised(lambda: provider.check("122760"))) is ProviderConfigurationError
    assert len(telefon_ip_api.calls) == 0


def test_a_base_url_that_is_not_a_url_is_a_configuration_error(telefon_ip_api: responses.RequestsMock) -> None:
    provider = TelefonIpProvider(token=TOKEN, base_url="api.telefon-ip.ru/", timeout=(1, 1), deadline=1)
    error = raised(lambda: provider.start(PHONE, None))
    assert (type(error), str(error)) == (
        ProviderConfigurationError,
        "CALLAUTH_TELEFON_IP_URL is not a valid URL.",
    )


# --- check --------------------------------------------------------------------------------


def test_check_confirmed_as_in_the_doc(provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock) -> None:
    telefon_ip_api.get(CHECK, json=CHECK_OK)
    assert provider.check("122760") == CallReport(caller="+79243555100", provider_id="122760")
    (call,) = telefon_ip_api.calls
    assert (call.request.method, call.request.url, call.request.body) == ("GET", CHECK, None)


@pytest.mark.parametrize(
    "data",
    [
        {"phone": "79243555100", "id": 122760},
        {"phone": "+79243555100", "id": "122760"},
        {"phone": 89243555100},
        {"phone": "89243555100", "id": 122760, "status": "ok"},
        {"phone": "89243555100", "status": "OK"},
    ],
)
@pytest.mark.parametrize("success", [True, "True", "true", 1])
def test_check_confirmed_variants(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock, data: dict[str, Any], success: object
) -> None:
    telefon_ip_api.get(CHECK, json={"success": success, "error": "", "data": data})
    assert provider.check("122760") == CallReport(caller="+79243555100", provider_id="122760")


# One of each kind (any answer, odd spellings of success included: test_properties.py::
# test_check_reports_a_caller_exactly_for_a_clear_success_about_our_id).
PENDING = [
    (200, {"success": False, "error": "call not received", "data": {}}),
    (200, {"success": False, "error": "", "data": {"phone": "89243555100", "id": 122760}}),  # phone, not success
    (200, {"success": True, "error": "", "data": {"phone": "", "id": 122760}}),
    (200, {"success": True, "error": "", "data": {"id": 122760}}),
    (200, {"success": True, "error": "", "data": {"status": "pending", "id": 122760}}),
    (200, {"success": True, "error": "", "data": {"phone": "89243555100", "id": 999999}}),  # another id
    (200, {"success": True, "error": "", "data": []}),
    (400, NOT_FOUND),
    (404, {"success": False, "error": "expired", "data": []}),
]


@pytest.mark.parametrize(("status", "answer"), PENDING)
def test_check_pending_shapes(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock, status: int, answer: Any
) -> None:
    body = answer if isinstance(answer, str) else json.dumps(answer)
    telefon_ip_api.get(CHECK, status=status, body=body)
    assert provider.check("122760") == CallReport(caller=None, provider_id="122760")
    assert len(telefon_ip_api.calls) == 1


@pytest.mark.parametrize("body", ["not json", "[]"])
def test_check_malformed_is_not_retried(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock, body: str
) -> None:
    telefon_ip_api.get(CHECK, body=body)
    assert type(raised(lambda: provider.check("122760"))) is ProviderMalformedAnswer
    assert len(telefon_ip_api.calls) == 1


def test_check_is_retried_once_when_unavailable(  # every cause: test_providers_http.py
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock
) -> None:
    telefon_ip_api.get(CHECK, status=503)
    telefon_ip_api.get(CHECK, json=CHECK_OK)
    assert provider.check("122760") == CallReport(caller="+79243555100", provider_id="122760")
    assert len(telefon_ip_api.calls) == 2


@pytest.mark.parametrize("provider_id", ["", "../122760", "1 2", "x" * 65, "12\n"])
def test_check_refuses_an_unusable_id_without_asking(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock, provider_id: str
) -> None:
    assert type(raised(lambda: provider.check(provider_id))) is ProviderMalformedAnswer
    assert len(telefon_ip_api.calls) == 0


# --- the token never shows ------------------------------------------------------------------

# The token is in every URL: a failure of each kind (HTTP statuses of every class with the token
# in the body: provider_contract.py's test_the_secret_is_in_no_log_line_exception_or_repr).
LEAK_CASES: list[tuple[str, dict[str, Any]]] = [
    ("start", {"status": 400, "json": {"success": False, "error": f"token {TOKEN} is blocked"}}),
    ("start", {"status": 302, "headers": {"Location": f"{BASE}{TOKEN}/elsewhere"}}),
    ("start", {"body": requests.exceptions.ConnectTimeout(f"Max retries exceeded with url: {START_GET}")}),
    ("start", {"body": requests.exceptions.ConnectionError(f"Connection refused: {START_GET}")}),
    ("start", {"status": 200, "json": start_answer(id=TOKEN + "/x")}),
    ("check", {"body": requests.exceptions.ReadTimeout(f"Read timed out: {CHECK}")}),
    ("check", {"status": 200, "body": "x" * (MAX_BODY_BYTES + 10)}),
]


@pytest.mark.parametrize(("action", "answer"), LEAK_CASES)
def test_the_token_is_in_no_exception_traceback_or_log(
    provider: TelefonIpProvider,
    telefon_ip_api: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    action: str,
    answer: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    url = START_GET if action == "start" else CHECK
    telefon_ip_api.get(url, **answer)
    telefon_ip_api.get(url, **answer)
    error = raised(lambda: provider.start(PHONE, None) if action == "start" else provider.check("122760"))
    assert (error.__context__, error.__cause__) == (None, None)
    for text in (
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        repr(provider),
        caplog.text,
    ):
        assert TOKEN not in text
    assert "***" in caplog.text  # the failure was logged, redacted


def test_an_unexpected_error_reports_neither_the_token_nor_the_webhook_secret(
    settings: Any, provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock
) -> None:
    # An error requests does not wrap is not ours to catch: Django reports it (the admins'
    # email), listing every frame's local variables, and requests' frames hold the full URL.
    settings.CALLAUTH_TELEFON_IP_TOKEN = TOKEN
    telefon_ip_api.post(START_POST, body=RuntimeError("unexpected"))
    telefon_ip_api.get(CHECK, body=RuntimeError("unexpected"))
    for action in (lambda: provider.start(PHONE, WEBHOOK), lambda: provider.check("122760")):
        with pytest.raises(RuntimeError) as info:
            action()
        reporter = ExceptionReporter(None, info.type, info.value, info.tb)
        frames = reporter.get_traceback_data()["frames"]
        functions = [frame["function"] for frame in frames]
        assert {"_request", "_send", "request", "send"} <= set(functions)  # ours and requests'
        for text in (reporter.get_traceback_text(), reporter.get_traceback_html(), repr(frames)):
            assert TOKEN not in text
            assert "s3cr3t-path" not in text


# --- the webhook ----------------------------------------------------------------------------

rf = RequestFactory()


@pytest.mark.parametrize(
    ("success", "caller"),
    [("True", "+79243555100"), ("true", "+79243555100"), ("1", None), ("False", None), ("", None)],
)
def test_webhook_success_decides_whether_there_is_a_caller(
    provider: TelefonIpProvider, success: str, caller: str | None
) -> None:
    request = rf.get("/hook/", {"success": success, "phone": "79243555100", "id": "122760"})
    assert provider.parse_webhook(request) == CallReport(caller=caller, provider_id="122760")


@pytest.mark.parametrize(
    ("method", "path", "form", "report"),
    [
        ("get", "/hook/?success=True&phone=89000000000&id=000000", None, CallReport("+79000000000", "000000")),
        (
            "post",
            "/hook/",
            {"success": "True", "phone": "89243555100", "id": "122760"},
            CallReport("+79243555100", "122760"),
        ),
        (
            "post",
            "/hook/?success=True&phone=89243555100&id=122760",
            {"success": "True", "phone": "89000000000", "id": "1"},
            CallReport("+79243555100", "122760"),
        ),
    ],
    ids=["as_the_doc_shows", "posted_as_a_form", "query_string_wins_over_a_posted_body"],
)
def test_webhook_is_read(
    provider: TelefonIpProvider, method: str, path: str, form: dict[str, str] | None, report: CallReport
) -> None:
    assert provider.parse_webhook(getattr(rf, method)(path, form)) == report


@pytest.mark.parametrize(
    "query",
    [
        "",
        "success=True",
        "success=True&phone=&id=",
        "success=True&phone=" + "8" * 10_000 + "&id=" + "1" * 10_000,
        "success=True&phone=8924355510%00&id=12%2F..",
        "success=True&phone=%ff%fe&id=%ff",
        "success=True&phone=abc&id=1;drop",
        "&".join(f"f{i}=1" for i in range(2000)) + "&success=True&phone=89243555100",  # too many fields
    ],
)
def test_webhook_junk_never_raises_and_never_has_a_caller(provider: TelefonIpProvider, query: str) -> None:
    assert provider.parse_webhook(rf.get("/hook/?" + query)) == CallReport(caller=None, provider_id=None)


def test_webhook_with_an_unparseable_body_never_raises(provider: TelefonIpProvider) -> None:
    request = rf.post("/hook/", data=b"--x\r\nbroken", content_type="multipart/form-data; boundary=x")
    assert provider.parse_webhook(request) == CallReport(caller=None, provider_id=None)


# --- balance ---------------------------------------------------------------------------------

BALANCE = f"{BASE}{TOKEN}/get_balance/"


def test_balance_asks_get_balance_on_the_fake(fake_telefon_ip: Any) -> None:
    provider = TelefonIpProvider(
        token=fake_telefon_ip.token, base_url=fake_telefon_ip.base_url, timeout=(2, 2), deadline=4
    )
    assert provider.balance() == ProviderBalance(Decimal("5.0"), "RUB", Decimal("0.2"))
    (asked,) = fake_telefon_ip.requests
    assert (asked.method, asked.action) == ("GET", "get_balance")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"balance": 5.0, "price": 0.2, "balance_limit": 0.0}, ProviderBalance(Decimal("5.0"), "RUB", Decimal("0.2"))),
        ({"balance": "12.50"}, ProviderBalance(Decimal("12.50"), "RUB", None)),
        ({"balance": -3, "price": True}, ProviderBalance(Decimal("-3"), "RUB", None)),
    ],
    ids=["the-doc", "text-no-price", "overdrawn-junk-price"],
)
def test_balance_shapes(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock, data: Any, expected: ProviderBalance
) -> None:
    telefon_ip_api.get(BALANCE, json={"success": True, "error": "", "data": data})
    assert provider.balance() == expected


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, {"success": False, "error": "no", "data": {}}, ProviderRejected),
        (200, {"success": True, "error": "", "data": {"balance": None}}, ProviderMalformedAnswer),
        (200, {"success": True, "error": "", "data": {"balance": "NaN"}}, ProviderMalformedAnswer),
        (200, {"success": True, "error": "", "data": {"balance": "lots"}}, ProviderMalformedAnswer),
        (200, {"success": True, "error": "", "data": []}, ProviderMalformedAnswer),
        (401, {"success": False, "error": "token"}, ProviderConfigurationError),
    ],
    ids=["rejected", "null", "nan", "text", "no-data", "bad-token"],
)
def test_balance_errors(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock, status: int, body: Any, error: type
) -> None:
    telefon_ip_api.get(BALANCE, status=status, json=body)
    with pytest.raises(error) as info:
        provider.balance()
    assert TOKEN not in str(info.value)


def test_balance_is_retried_once_when_unavailable(
    provider: TelefonIpProvider, telefon_ip_api: responses.RequestsMock
) -> None:
    telefon_ip_api.get(BALANCE, status=503)
    telefon_ip_api.get(BALANCE, json={"success": True, "error": "", "data": {"balance": 1}})
    assert provider.balance().amount == 1
    assert len(telefon_ip_api.calls) == 2
