"""Properties of the parsers of untrusted input, over inputs nobody would write by hand.

Phones come from users, provider answers and webhooks from the network. Whatever arrives,
each parser answers within its contract (a canonical phone, a report, one of its own
errors), never anything else: that is what "bad input gets a clear error, never a 500"
rests on. The example tests elsewhere pin the shapes docs/providers/telefon-ip.rst shows; these look for the
ones it does not.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import hypothesis
import responses
from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from django_callauth.phones import InvalidPhoneNumber, format_phone, normalize_phone, parse_provider_phone
from django_callauth.providers.base import CallReport, ProviderError, StartedCall
from django_callauth.providers.telefon_ip import TelefonIpProvider, _Answer, _classify
from tests.helpers import API, PHONE, PROVIDER_ID, START_GET, TOKEN

#: Enough examples to find the odd shape, few enough to keep the suite fast (~4 s in all).
PROPERTY = hypothesis.settings(max_examples=150, deadline=None)

CANONICAL_MOBILE = re.compile(r"\+79[0-9]{9}")
CHECK = f"{API}reverse_auth_phone_check/{PROVIDER_ID}/"
OUR_ID = str(PROVIDER_ID)
PROVIDER = TelefonIpProvider(token=TOKEN, base_url=API.removesuffix(f"{TOKEN}/"), timeout=(1, 1), deadline=5)


class Text(str):
    """A str subclass: still text, but not the built-in type."""


# -- strategies ---------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
any_objects = json_values | st.binary(max_size=20) | st.builds(object) | st.builds(Text, st.text(max_size=20))
#: Text near a phone number: digits, separators, plus signs and whitespace.
phone_like = st.text(alphabet="0123456789789+ -().\u00a0\t\n", max_size=40)


@st.composite
def writings(draw: st.DrawFn) -> tuple[str, str]:
    """(the 10-digit national number, one way a person writes it: +7, 8, 7 or no prefix, any separators)."""
    national = "9" + draw(st.text(alphabet="0123456789", min_size=9, max_size=9))
    characters = draw(st.sampled_from(["+7", "8", "7", ""])) + national
    separators = draw(
        st.lists(
            st.sampled_from(["", "", " ", "-", "(", ")", ".", "\u00a0"]),
            min_size=len(characters) - 1,
            max_size=len(characters) - 1,
        )
    )
    written = characters[0] + "".join(sep + char for sep, char in zip(separators, characters[1:], strict=True))
    padding = draw(st.sampled_from(["", " ", "\t"]))
    return national, padding + written + padding


def either(good: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` half of the time, else ``other``.

    ``good | other`` would not do: one_of flattens, so each of ``other``'s own branches
    would be as likely as ``good``, and an answer good in every field would be rare.
    """
    return st.booleans().flatmap(lambda pick_good: good if pick_good else other)


written_mobiles = writings().map(lambda case: case[1])
#: Phones as the provider might send them: good ones, then near misses and anything.
provider_phones = either(
    st.sampled_from(["89243555100", "79243555100", "+79243555100", 89243555100, "84951234567"]) | written_mobiles,
    st.sampled_from(["80012345678", "+12025550100", "7924355510", "", None, True, -89243555100])
    | phone_like
    | json_scalars,
)
success_values = either(
    st.sampled_from([True, "True", "true", " TRUE ", 1]),
    st.sampled_from([False, "False", 0, None, "yes", 1.0, 2]) | json_scalars,
)
our_ids = st.sampled_from([PROVIDER_ID, OUR_ID])
other_ids = st.sampled_from([999999, "999999", True, "../1", "1 2", float(PROVIDER_ID), "x" * 65]) | json_scalars
id_values = either(our_ids, other_ids)
ok_statuses = st.sampled_from(["ok", "OK", "Ok"])
other_statuses = st.sampled_from(["pending", "expired", "", 1]) | json_scalars
#: Marks a key to leave out of an answer: ``fixed_dictionaries``' optional keys are left out
#: three times in four, so an answer about another id would be rare.
ABSENT = object()
error_texts = st.sampled_from(["", "call not received", f"token {TOKEN} is blocked"]) | st.text(max_size=200)


def documented(data: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """The answer object docs/providers/telefon-ip.rst shows, each field a good value or a near miss."""
    return st.fixed_dictionaries({"success": success_values, "error": error_texts, "data": data})


check_answers = documented(
    st.fixed_dictionaries(
        {
            "phone": provider_phones,
            "id": either(st.just(ABSENT) | our_ids, other_ids),
            "status": either(st.just(ABSENT) | ok_statuses, other_statuses),
        }
    ).map(lambda data: {key: value for key, value in data.items() if value is not ABSENT})
)
start_answers = documented(
    st.fixed_dictionaries({"auth_phone": provider_phones, "id": id_values}, optional={"url_link": st.text(max_size=20)})
)
#: Raw answer bodies: documented answers, any JSON, any bytes.
bodies = (check_answers | start_answers | json_values).map(lambda answer: json.dumps(answer).encode()) | st.binary(
    max_size=200
)
http_statuses = st.just(200) | st.sampled_from([201, 204, 400, 401, 404, 429, 500, 503]) | st.integers(100, 599)
#: Statuses an answer with a body may have (by HTTP, 1xx, 204 and 304 have none), mostly a
#: success: the documented answers they go with are where a caller or a number comes from.
statuses_with_body = either(
    st.sampled_from([200, 201, 299]),
    http_statuses.filter(lambda status: status >= 200 and status not in (204, 304)),
)


# -- the phone parser -----------------------------------------------------------------------


@PROPERTY
@given(st.text() | phone_like | written_mobiles | any_objects)
def test_normalize_phone_gives_a_canonical_mobile_or_its_own_error(value: object) -> None:
    try:
        phone = normalize_phone(value)
    except InvalidPhoneNumber as exc:
        assert isinstance(exc.message, str) and exc.message.strip()
        return
    assert type(phone) is str and CANONICAL_MOBILE.fullmatch(phone)
    assert normalize_phone(phone) == phone  # idempotent


@PROPERTY
@given(writings())
def test_every_way_of_writing_a_number_gives_the_same_phone(case: tuple[str, str]) -> None:
    national, written = case
    assert normalize_phone(written) == "+7" + national
    assert normalize_phone(format_phone("+7" + national)) == "+7" + national  # "+7 9XX XXX-XX-XX"


@PROPERTY
@given(st.text() | provider_phones | any_objects)
def test_parse_provider_phone_never_raises(value: object) -> None:
    phone = parse_provider_phone(value)
    if phone is not None:
        assert re.fullmatch(r"\+7[0-9]{10}", phone)
        assert not phone.startswith("+780")  # never a non-geographic 8-80X service number
        assert parse_provider_phone(phone) == phone


# -- the provider client ----------------------------------------------------------------------


def is_true(success: object) -> bool:
    """The documented forms of a true ``success``: true, "True", "true", 1."""
    if isinstance(success, str):
        return success.strip().lower() == "true"
    return success is True or (type(success) is int and success == 1)


def answer_with(url: str, status: int, body: bytes) -> responses.RequestsMock:
    """``responses`` answering ``url`` (every try) with ``status`` and ``body``."""
    mocked = responses.RequestsMock(assert_all_requests_are_fired=False)
    mocked.get(url, status=status, body=body)
    return mocked


def is_ok(status: int) -> bool:
    return 200 <= status < 300


def is_our_id(value: object) -> bool:
    """Whether an answer's ``id`` names our authorisation (the provider sends an int or a string)."""
    return type(value) in (int, str) and str(value) == OUR_ID


@PROPERTY
@given(st.integers(min_value=-1, max_value=1000), bodies)
def test_classify_answers_or_raises_only_provider_errors(status: int, body: bytes) -> None:
    try:
        answer = _classify(status, lambda: body, "GET test", (TOKEN,))
    except ProviderError as exc:
        assert TOKEN not in str(exc)
        return
    assert isinstance(answer, _Answer)
    assert isinstance(answer.data, dict) and isinstance(answer.error, str)
    assert TOKEN not in answer.error and "\n" not in answer.error
    assert not answer.success or is_ok(status)


@PROPERTY
@given(http_statuses, bodies)
def test_check_on_any_answer_raises_only_provider_errors(status: int, body: bytes) -> None:
    with answer_with(CHECK, status, body):
        try:
            report = PROVIDER.check(OUR_ID)
        except ProviderError:
            return
    assert report.provider_id == OUR_ID
    assert report.caller is None or parse_provider_phone(report.caller) == report.caller


@PROPERTY
@given(statuses_with_body, check_answers)
def test_check_reports_a_caller_exactly_for_a_clear_success_about_our_id(status: int, answer: Any) -> None:
    with answer_with(CHECK, status, json.dumps(answer).encode()):
        try:
            report = PROVIDER.check(OUR_ID)
        except ProviderError:
            assert not is_ok(status)  # a 2xx JSON object is always read
            return
    data = answer["data"]
    clear = (
        is_ok(status)
        and is_true(answer["success"])
        and ("id" not in data or is_our_id(data["id"]))
        and (data.get("status") is None or (isinstance(data["status"], str) and data["status"].lower() == "ok"))
    )
    caller = parse_provider_phone(data["phone"]) if clear else None
    assert report == CallReport(caller=caller, provider_id=OUR_ID)


@PROPERTY
@given(http_statuses, bodies)
def test_start_on_any_answer_raises_only_provider_errors(status: int, body: bytes) -> None:
    with answer_with(START_GET, status, body):
        try:
            started = PROVIDER.start(PHONE, None)
        except ProviderError:
            return
    assert is_ok(status)
    assert parse_provider_phone(started.call_to) == started.call_to
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", started.provider_id)


@PROPERTY
@given(statuses_with_body, start_answers)
def test_start_gives_exactly_a_documented_success(status: int, answer: Any) -> None:
    data = answer["data"]
    call_to = parse_provider_phone(data["auth_phone"])
    provider_id = data["id"]
    valid_id = type(provider_id) in (int, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(provider_id))
    success = bool(is_ok(status) and is_true(answer["success"]) and valid_id and call_to is not None)
    with answer_with(START_GET, status, json.dumps(answer).encode()):
        try:
            started = PROVIDER.start(PHONE, None)
        except ProviderError:
            assert not success
            return
    assert success
    assert started == StartedCall(call_to=call_to, provider_id=str(provider_id))


# -- the webhook ------------------------------------------------------------------------------

#: Webhook fields: the three the provider sends ("?success=True&phone=…&id=…"), or any fields.
webhook_fields = (
    st.fixed_dictionaries(
        {"success": success_values.map(str), "phone": provider_phones.map(str), "id": id_values.map(str)}
    )
    | st.lists(
        st.tuples(
            st.sampled_from(["success", "phone", "id"]) | st.text(max_size=5),
            success_values.map(str) | provider_phones.map(str) | id_values.map(str) | st.text(max_size=20),
        ),
        max_size=6,
    )
).map(urlencode)
#: A WSGI query string is bytes decoded as latin-1; any bytes can arrive.
query_strings = webhook_fields | st.binary(max_size=200).map(lambda raw: raw.decode("latin-1"))
content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "multipart/form-data; boundary=x",
        "multipart/form-data",
        "multipart/form-data; boundary=x; charset=no-such-codec",
        "application/json",
        "text/plain; charset=utf-16",
        "",
    ]
)
rf = RequestFactory()


@PROPERTY
@given(
    st.sampled_from(["GET", "POST"]),
    query_strings,
    webhook_fields.map(str.encode) | st.binary(max_size=300),
    content_types,
)
def test_parse_webhook_never_raises(method: str, query: str, body: bytes, content_type: str) -> None:
    request = rf.generic(method, "/hook/", data=body, content_type=content_type, QUERY_STRING=query)
    report = PROVIDER.parse_webhook(request)
    assert report.caller is None or parse_provider_phone(report.caller) == report.caller
    assert report.provider_id is None or re.fullmatch(r"[A-Za-z0-9_-]{1,64}", report.provider_id)
