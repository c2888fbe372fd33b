"""The HTTP client the built-in providers share (providers/http.py), on its own.

Each request is classified into one of our errors, with one log line that names the URL
with the secret replaced; bodies are read within a size cap and a total deadline; only
``retry_once`` retries. Against recorded answers (``responses``) and, where sockets
matter (a trickle, a stall, a closed port), a loopback server (tests/fake_server.py).
Each provider's own tests (and tests/provider_contract.py) show that it uses this client.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses

from django_callauth.providers import http
from django_callauth.providers.base import (
    ProviderConfigurationError,
    ProviderError,
    ProviderMalformedAnswer,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from tests.fake_server import FakeServer
from tests.helpers import Clock

SECRET = "s3cret-key"
URL = f"https://api.acme.example/v1/{SECRET}/call"
WHERE = "GET https://api.acme.example/v1/***/call"  # what logs show of the request
LOGGED = f"acme {WHERE}"


def client(timeout: tuple[float, float] = (3.05, 5.0), deadline: float = 10.0) -> http.HttpClient:
    return http.HttpClient(
        vendor="acme",
        credential="API key",
        url_setting="CALLAUTH_ACME_URL",
        secrets=(SECRET,),
        timeout=timeout,
        deadline=deadline,
    )


def get(acme: http.HttpClient, url: str = URL) -> http.Reply:
    return acme.request("GET", url, WHERE, acme.deadline_at())


def raised(call: Callable[[], Any]) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        call()
    return info.value


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


# -- statuses ---------------------------------------------------------------------------------

# (status, error, its message, what the log line says): "{}" stands for the status.
STATUS_CASES = [
    (status, error, message.format(status), log.format(status))
    for statuses, error, message, log in [
        (
            (401, 403),
            ProviderConfigurationError,
            "acme refused the API key (HTTP {}).",
            "HTTP {}, the token was refused",
        ),
        ((402,), ProviderRejected, "acme asks for payment (HTTP {}).", "HTTP {}, payment required"),
        ((429,), ProviderRateLimited, "acme is rate limiting us (HTTP {}).", "HTTP {}, rate limited"),
        ((500, 502, 503, 504), ProviderUnavailable, "acme failed (HTTP {}).", "HTTP {}, server error"),
        (
            (301, 302, 307),
            ProviderMalformedAnswer,
            "acme answered with a redirect (HTTP {}).",
            "HTTP {} redirect, not followed",
        ),
    ]
    for status in statuses
]


@pytest.mark.parametrize(("status", "exc_type", "message", "log"), STATUS_CASES)
def test_a_status_that_is_neither_2xx_nor_4xx_is_our_error_and_one_log_line(
    api: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    status: int,
    exc_type: type[ProviderError],
    message: str,
    log: str,
) -> None:
    # A redirect target that would answer fine: it must never be requested.
    api.get(URL, status=status, body="<html>error</html>", headers={"Location": "https://evil.example/x"})
    api.get("https://evil.example/x", json={})
    error = raised(lambda: get(client()))
    assert (type(error), str(error)) == (exc_type, message)
    assert len(api.calls) == 1  # neither retried nor redirected
    assert f"{LOGGED}: {log}" in logged(caplog)
    assert SECRET not in caplog.text


@pytest.mark.parametrize("status", [200, 400, 404, 418])
def test_2xx_and_4xx_answers_are_read(api: responses.RequestsMock, status: int) -> None:
    api.get(URL, status=status, body=b'{"a": 1}')
    assert get(client()) == http.Reply(status, b'{"a": 1}')


def test_the_request_is_streamed_with_the_timeouts_and_never_follows_redirects(api: responses.RequestsMock) -> None:
    api.get(URL, body=b"{}")
    get(client(timeout=(1.5, 4.0)))
    kwargs = api.calls[0].request.req_kwargs
    assert (kwargs["timeout"], kwargs["stream"]) == ((1.5, 4.0), True)


# -- bodies -----------------------------------------------------------------------------------


def test_a_body_of_exactly_the_limit_is_read(api: responses.RequestsMock) -> None:
    api.get(URL, body=b" " * http.MAX_BODY_BYTES)
    assert len(get(client()).body) == http.MAX_BODY_BYTES


@pytest.mark.parametrize(
    ("body", "headers", "exc_type", "message", "log"),
    [
        (
            b" " * (http.MAX_BODY_BYTES + 1),
            {},
            ProviderMalformedAnswer,
            "acme sent an oversized answer.",
            f"body larger than {http.MAX_BODY_BYTES} bytes",
        ),
        (
            gzip.compress(b" " * 10_000_000),  # 10 KB on the wire, 10 MB unpacked: stopped at 64 KiB
            {"Content-Encoding": "gzip"},
            ProviderMalformedAnswer,
            "acme sent an oversized answer.",
            f"body larger than {http.MAX_BODY_BYTES} bytes",
        ),
        (
            b"\x1f\x8bnot really gzip",
            {"Content-Encoding": "gzip"},
            ProviderMalformedAnswer,
            "acme sent an undecodable answer.",
            "body could not be decompressed",
        ),
        (
            b"{}",
            {"Content-Length": "100"},
            ProviderUnavailable,
            "acme's answer was cut off.",
            "connection broke while reading the body",
        ),
    ],
    ids=["oversized", "gzip-bomb", "bad-gzip", "cut-off"],
)
def test_broken_bodies(
    api: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    headers: dict[str, str],
    exc_type: type[ProviderError],
    message: str,
    log: str,
) -> None:
    api.get(URL, body=body, headers=headers)
    error = raised(lambda: get(client()))
    assert (type(error), str(error)) == (exc_type, message)
    assert (error.__context__, error.__cause__) == (None, None)  # no chained requests/urllib3 exception
    assert f"{LOGGED}: {log}" in logged(caplog)


# -- the network ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "exc_type", "message", "log", "no_call_set_up"),
    [
        (
            requests.exceptions.ConnectTimeout(URL),
            ProviderUnavailable,
            "acme did not answer in time.",
            "timed out",
            True,
        ),
        (requests.exceptions.ReadTimeout(URL), ProviderUnavailable, "acme did not answer in time.", "timed out", False),
        (
            requests.exceptions.ConnectionError(URL),
            ProviderUnavailable,
            "acme cannot be reached.",
            "connection failed",
            False,
        ),
        (
            requests.exceptions.ChunkedEncodingError(URL),
            ProviderUnavailable,
            "The request to acme failed.",
            "request failed",
            False,
        ),
        (
            requests.exceptions.InvalidURL(URL),
            ProviderConfigurationError,
            "CALLAUTH_ACME_URL is not a valid URL.",
            "invalid URL",
            True,  # a configuration error: nothing was sent
        ),
    ],
    ids=["connect-timeout", "read-timeout", "connection", "other", "invalid-url"],
)
def test_network_failures(
    api: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    failure: Exception,
    exc_type: type[ProviderError],
    message: str,
    log: str,
    no_call_set_up: bool,
) -> None:
    api.get(URL, body=failure)
    error = raised(lambda: get(client()))
    assert (type(error), str(error), error.no_call_set_up) == (exc_type, message, no_call_set_up)
    assert (error.__context__, error.__cause__) == (None, None)
    assert f"{LOGGED}: {log}" in logged(caplog)
    assert SECRET not in caplog.text + repr(error)


def test_a_request_whose_deadline_has_passed_is_not_sent(api: responses.RequestsMock, caplog: Any) -> None:
    api.get(URL, json={})
    acme = client()
    error = raised(lambda: acme.request("GET", URL, WHERE, http.now() - 0.001))
    assert len(api.calls) == 0
    assert error.no_call_set_up  # never sent, so nothing was billed: the next provider may be asked
    assert str(error) == "acme request skipped: deadline passed."
    assert f"{LOGGED}: no time left before the deadline" in logged(caplog)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A loopback server answering only what ``fail_next`` queues."""
    with FakeServer() as fake:
        yield fake


def test_a_trickling_body_stops_at_the_deadline(server: FakeServer) -> None:
    # Each byte arrives well within the read timeout: only the total deadline can stop this.
    server.fail_next(200, "{" + " " * 30 + "}", delay=0.1)
    began = time.monotonic()
    error = raised(lambda: get(client(timeout=(1, 1), deadline=0.6), server.base_url))
    assert 0.5 < time.monotonic() - began < 1.5
    assert (type(error), str(error)) == (ProviderUnavailable, "acme answered too slowly.")
    assert not error.no_call_set_up  # the request was sent: a call may be set up


def test_a_stalled_body_hits_the_read_timeout(server: FakeServer) -> None:
    server.fail_next(200, "{}", delay=2)
    began = time.monotonic()
    error = raised(lambda: get(client(timeout=(1, 0.3), deadline=5), server.base_url))
    assert time.monotonic() - began < 1.5
    assert (type(error), str(error)) == (ProviderUnavailable, "acme stopped answering mid-answer.")
    assert not error.no_call_set_up


def test_a_closed_port_proves_no_call_was_set_up() -> None:
    closed = FakeServer().start()
    base_url = closed.base_url
    closed.stop()
    error = raised(lambda: get(client(timeout=(1, 1), deadline=2), base_url))
    assert (type(error), str(error)) == (ProviderUnavailable, "acme cannot be reached.")
    assert error.no_call_set_up


# -- retry_once -------------------------------------------------------------------------------


def retried_get(acme: http.HttpClient) -> http.Reply:
    deadline_at = acme.deadline_at()
    return acme.retry_once(lambda: acme.request("GET", URL, WHERE, deadline_at), deadline_at, WHERE)


def failing_slowly(clock: Clock, seconds: float) -> Callable[[Any], tuple[int, dict[str, str], str]]:
    """A ``responses`` callback answering 503 after ``seconds``."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        clock.advance(seconds)
        return 503, {}, ""

    return answer


@pytest.mark.parametrize(
    "first",
    [
        {"status": 503},
        {"status": 500},
        {"body": requests.exceptions.ReadTimeout(URL)},
        {"body": requests.ConnectionError(URL)},
    ],
    ids=["503", "500", "read-timeout", "connection"],
)
def test_unavailable_is_retried_once(api: responses.RequestsMock, caplog: Any, first: dict[str, Any]) -> None:
    api.get(URL, **first)
    api.get(URL, body=b"{}")
    assert retried_get(client()).body == b"{}"
    assert len(api.calls) == 2
    assert f"{LOGGED}: retrying once" in logged(caplog)


def test_it_gives_up_after_the_retry(api: responses.RequestsMock) -> None:
    api.get(URL, status=502)
    api.get(URL, body=requests.exceptions.ConnectTimeout(URL))
    api.get(URL, body=b"{}")
    error = raised(lambda: retried_get(client()))
    assert (type(error), str(error)) == (ProviderUnavailable, "acme did not answer in time.")
    assert error.__context__ is None  # the second failure does not chain to the first
    assert len(api.calls) == 2


@pytest.mark.parametrize(
    ("status", "exc_type"), [(status, error) for status, error, *_ in STATUS_CASES if error is not ProviderUnavailable]
)
def test_every_other_error_is_not_retried(api: responses.RequestsMock, status: int, exc_type: type) -> None:
    api.get(URL, status=status)
    api.get(URL, body=b"{}")
    assert type(raised(lambda: retried_get(client()))) is exc_type  # a 429 most of all: a retry deepens it
    assert len(api.calls) == 1


def test_no_retry_when_the_deadline_is_spent(clock: Clock, api: responses.RequestsMock) -> None:
    # Of a 10 s deadline, 0.4 s left is not enough for another try.
    api.add_callback(responses.GET, URL, callback=failing_slowly(clock, seconds=9.6))
    assert type(raised(lambda: retried_get(client()))) is ProviderUnavailable
    assert len(api.calls) == 1


def test_the_retry_gets_only_what_is_left_of_the_deadline(clock: Clock, api: responses.RequestsMock) -> None:
    api.add_callback(responses.GET, URL, callback=failing_slowly(clock, seconds=8.0))
    api.get(URL, body=b"{}")
    assert retried_get(client()).body == b"{}"
    assert [call.request.req_kwargs["timeout"] for call in api.calls] == [(3.05, 5.0), (2.0, 2.0)]


def test_a_secret_in_where_is_redacted_all_the_same(api: responses.RequestsMock, caplog: Any) -> None:
    api.get(URL, status=503)
    acme = client()
    raised(lambda: acme.request("GET", URL, f"GET {URL}", acme.deadline_at()))
    assert f"{LOGGED}: HTTP 503, server error" in logged(caplog)
    assert SECRET not in caplog.text


def test_the_client_names_its_vendor_and_never_its_secret() -> None:
    assert repr(client()) == "<HttpClient acme>"
