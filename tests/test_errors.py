"""The error model at its own layer: the ``ErrorCode`` registry, each ``ApiError`` answer, their rendering.

The views' tests show which answer each situation gets; these show that every answer
renders as ``{"error": code, "message": ...}`` (or the HTML page) with its code's status,
that the registry is complete and without duplicates, and that it agrees with the
shipped OpenAPI document.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from importlib import resources
from typing import Any

import pytest
from django.test import RequestFactory
from django.utils import translation
from django.utils.html import escape

from django_callauth import errors
from django_callauth.errors import ApiError, CallAuthRefusal, ErrorCode
from django_callauth.guards.limits import RateLimited, RateLimiterUnavailable, StartInProgress, StartRefused
from django_callauth.phones import InvalidPhoneNumber
from django_callauth.providers.base import ProviderError
from django_callauth.web.negotiation import error_response

#: Every answer errors.py defines, by its name there.
ANSWERS: dict[str, ApiError] = {name: value for name, value in vars(errors).items() if isinstance(value, ApiError)}
#: The answers read by providers' servers, not people: never translated.
UNTRANSLATED = {"UNKNOWN_WEBHOOK", "UNKNOWN_CALLBACK", "PROVIDER_REQUEST_FAILED"}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def filled(error: ApiError) -> ApiError:
    """``error`` with any ``%(name)s`` of its message filled in, as the code answering it does."""
    names = _PLACEHOLDER.findall(str(error.message))
    return error.format(**{name: f"<{name}>" for name in names}) if names else error


def subclasses(cls: type) -> list[type]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in subclasses(direct))]


# -- the registry --------------------------------------------------------------------


def test_the_registry_has_no_duplicate_codes() -> None:
    # A member with the value of another would silently become its alias, not a member.
    assert list(ErrorCode.__members__.values()) == list(ErrorCode)
    assert len({code.value for code in ErrorCode}) == len(ErrorCode)


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_code_is_documented_with_an_error_status(code: ErrorCode) -> None:
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code.value)
    assert str(code) == code.value == code  # templates and log lines show the code itself
    assert isinstance(code.status, HTTPStatus) and code.status >= 400
    assert code.__doc__ and code.__doc__ != ErrorCode.__doc__


def test_every_code_has_an_answer() -> None:
    # An invalid phone's message is the phone's own problem (phones.InvalidPhoneNumber).
    assert {answer.code for answer in ANSWERS.values()} | {ErrorCode.INVALID_PHONE} == set(ErrorCode)


# -- each answer -------------------------------------------------------------------------


@pytest.fixture
def json_request(rf: RequestFactory) -> Any:
    return rf.get("/", HTTP_ACCEPT="application/json")


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_every_answer_renders_as_json_with_its_codes_status(name: str, json_request: Any) -> None:
    error = filled(ANSWERS[name])
    response = error_response(json_request, error)
    assert response.status_code == error.code.status
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body == {"error": error.code.value, "message": str(error.message)}
    assert body["message"].strip() and "%(" not in body["message"]
    assert response.get("Retry-After") == (str(error.retry_after) if error.retry_after else None)


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_every_answer_renders_as_the_html_page_with_its_codes_status(name: str, rf: RequestFactory) -> None:
    error = filled(ANSWERS[name])
    response = error_response(rf.get("/", HTTP_ACCEPT="text/html"), error)
    assert response.status_code == error.code.status
    assert response["Content-Type"].startswith("text/html")
    assert escape(str(error.message)) in response.content.decode()


@pytest.mark.parametrize("name", sorted(set(ANSWERS) - UNTRANSLATED))
def test_every_answer_for_people_is_translated_lazily(name: str) -> None:
    error = filled(ANSWERS[name])
    english = str(error.message)
    with translation.override("ru"):
        russian = str(error.message)
    assert russian != english
    assert re.search("[а-яё]", russian)


#: The English of the answers people meet most: pinned here only (tests elsewhere check the code).
ENGLISH = {
    "NO_LOGIN_FLOW": "There is no login by phone call in progress in this browser. Enter your phone number to start.",
    "NOT_CONFIRMED": "We have not received your call yet. Call the number shown, then try again.",
    "EXPIRED": "Time to call is up. Enter your phone number to get a new number to call.",
    "ALREADY_USED": "This call was already used to log in. Start again to log in once more.",
    "PHONE_MISMATCH": "The call came from a different phone than the number you entered. Call from that phone.",
    "NO_ACCOUNT": "There is no account with this phone number.",
    "BODY_NOT_AN_OBJECT": "The request body must be a JSON object.",
}


@pytest.mark.parametrize(("name", "english"), sorted(ENGLISH.items()))
def test_the_english_of_each_answer(name: str, english: str) -> None:
    with translation.override("en"):
        assert str(ANSWERS[name].message) == english


def test_a_formatted_message_is_translated_when_rendered() -> None:
    error = errors.METHOD_NOT_ALLOWED.format(methods="POST")  # built in English...
    assert str(error.message) == "This address only answers POST requests."
    with translation.override("ru"):
        assert "POST" in str(error.message) and re.search("[а-яё]", str(error.message))  # ...shown in Russian
    assert error.code is ErrorCode.METHOD_NOT_ALLOWED and errors.METHOD_NOT_ALLOWED.message != error.message


def test_an_error_is_a_value() -> None:
    assert errors.EXPIRED == ApiError(ErrorCode.EXPIRED, errors.EXPIRED.message)
    with pytest.raises(AttributeError):
        errors.EXPIRED.retry_after = 5  # type: ignore[misc]


# -- the exceptions that carry one ---------------------------------------------------


@pytest.mark.parametrize(("scope", "text"), [("ip", "Too many attempts"), ("global", "Too many people")])
def test_rate_limited_says_how_long_to_wait_in_the_language_shown(scope: str, text: str) -> None:
    error = RateLimited(scope, 300).error
    assert (error.code, error.retry_after) == (ErrorCode.RATE_LIMITED, 300)
    assert str(error.message).startswith(text) and str(error.message).endswith("Try again in 5 minutes.")
    with translation.override("ru"):
        assert str(error.message).endswith("5 минут.")


def test_every_start_refusal_answers_a_registered_error() -> None:
    refusals: list[StartRefused] = [RateLimited("phone", 40), RateLimiterUnavailable(), StartInProgress()]
    assert {type(refusal) for refusal in refusals} == set(subclasses(StartRefused)) - {StartRefused}
    assert [refusal.error.code for refusal in refusals] == [
        ErrorCode.RATE_LIMITED,
        ErrorCode.RATE_LIMITER_UNAVAILABLE,
        ErrorCode.START_IN_PROGRESS,
    ]
    assert [refusal.error.retry_after for refusal in refusals] == [40, None, 1]


def test_every_refusal_shares_one_base_that_views_catch() -> None:
    # A view answers any CallAuthRefusal with its error: these three families are all of them.
    assert {InvalidPhoneNumber, StartRefused, ProviderError} <= set(CallAuthRefusal.__subclasses__())
    for refusal in [InvalidPhoneNumber("Enter a phone."), RateLimited("phone", 40), ProviderError("down")]:
        assert isinstance(refusal, CallAuthRefusal)
        assert isinstance(refusal.error, ApiError)
    assert isinstance(InvalidPhoneNumber("Enter a phone."), ValueError)  # as before it had a base


def test_a_refusal_always_carries_its_answer() -> None:
    with pytest.raises(TypeError, match="CallAuthRefusal needs an error"):
        CallAuthRefusal("refused")
    assert CallAuthRefusal(error=errors.PROVIDER_REJECTED).error is errors.PROVIDER_REJECTED
    # One instance's own answer leaves the class's default alone.
    assert ProviderError("down", error=errors.PROVIDER_REJECTED).error is errors.PROVIDER_REJECTED
    assert ProviderError("down").error is errors.PROVIDER_FAILED


@pytest.mark.parametrize("cls", subclasses(ProviderError), ids=lambda cls: cls.__name__)
def test_every_provider_error_answers_one_of_the_answers(cls: type[ProviderError]) -> None:
    assert cls().error in ANSWERS.values()


# -- the OpenAPI document ------------------------------------------------------------------


def _openapi() -> dict[str, Any]:
    text = resources.files("django_callauth").joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def _listed_codes(document: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(path, status, code) for every code an operation's response lists ("Codes: `a`, `b`.")."""
    listed = []
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                match = re.search(r"Codes: ((?:`\w+`(?:, )?)+)", response.get("description", ""))
                for code in re.findall(r"`(\w+)`", match.group(1) if match else ""):
                    listed.append((path, int(status), code))
    return listed


def test_the_documents_codes_are_registered_with_the_status_they_are_listed_under() -> None:
    listed = _listed_codes(_openapi())
    assert listed
    registered = {code.value: code.status for code in ErrorCode}
    assert [(path, status, code) for path, status, code in listed if registered.get(code) != status] == []


def test_the_document_names_every_code() -> None:
    text = json.dumps(_openapi())
    assert [code.value for code in ErrorCode if f"`{code.value}`" not in text] == []
