"""Phone parsing: every input a user or the provider may send (docs/security.rst, "Threats the tests play")."""

from __future__ import annotations

import pytest

from django_callauth.phones import (
    MAX_INPUT_LENGTH,
    InvalidPhoneNumber,
    format_phone,
    mask_phone,
    normalize_phone,
    parse_provider_phone,
    tel_uri,
)

CANONICAL = "+79001234567"

EMPTY = "Enter your mobile phone number."
TOO_LONG = "This is too long for a phone number."
NOT_RUSSIAN = "Enter a Russian mobile number, for example +7 900 123-45-67."
NOT_MOBILE = "Only Russian mobile numbers (+7 9XX …) can log in by phone call."


def refusal(value: object) -> str:
    with pytest.raises(InvalidPhoneNumber) as excinfo:
        normalize_phone(value)
    assert str(excinfo.value) == excinfo.value.message
    return excinfo.value.message


# -- accepted forms -------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        *["+79001234567", "79001234567", "89001234567", "9001234567", "+7 900 123-45-67", "+7 (900) 123-45-67"],
        *["8-900-123-45-67", "+7(900)1234567", "+7.900.123.45.67", "  89001234567  ", "\t+79001234567"],
        "+7\u00a0900\u00a0123\u00a045\u00a067",  # no-break spaces, as pasted from a web page
        # Deliberate: a number pasted with its line ending is still the same number.
        # Newlines *inside* the number are refused (see the control character cases).
        "+79001234567\n",
        "89001234567\r\n",
    ],
)
def test_common_forms_give_one_canonical_number(value: str) -> None:
    assert normalize_phone(value) == CANONICAL


def test_invalid_phone_number_is_a_value_error() -> None:
    assert issubclass(InvalidPhoneNumber, ValueError)


# -- refused inputs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    # A form or JSON body may carry a list, an object or a number: never a phone.
    [None, 89001234567, 9001234567, 8.9001234567e10, True, ["+79001234567"], {"phone": "+79001234567"}, b"89001234567"]
    + ["", " ", "   \n\t", "\u00a0"],
    ids=["None", "int", "int10", "float", "bool", "list", "dict", "bytes", "empty", "space", "whitespace", "nbsp"],
)
def test_empty_or_non_string_input(value: object) -> None:
    assert refusal(value) == EMPTY


NOT_RUSSIAN_INPUTS = {
    "letters": ["abc", "+7 900 ABC-45-67", "8900123456O", "+7 900 123-45-67 ext 1"],
    "too-short": ["9", "+7", "+7900123456", "900123456", "+"],
    "too-many-digits": ["+790012345678", "890012345678", "9001234567890"],
    "misplaced-plus": ["++79001234567", "7+9001234567", "+7900+1234567", "79001234567+"],
    # Refused, not converted to ASCII digits (Arabic-Indic, fullwidth, one among ASCII, a fullwidth plus).
    "non-ascii-digits": [
        "+\u0667\u0669\u0660\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667",
        "+\uff17\uff19\uff10\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17",
        "+7900\uff11234567",
        "\uff0b79001234567",
    ],
    # NUL, a line break, a tab, ANSI escape, zero-width space, right-to-left override, DEL.
    "control-or-invisible-inside": ["+7900\x001234567", "\x00+79001234567", "+7900\n1234567", "+7900\t1234567"]
    + ["\x1b[31m+79001234567", "+7900\u200b1234567", "+7900\u202e7654321", "+7900\x7f1234567"],
    "other-country": ["+12025550123", "12025550123", "+44 20 7946 0958", "+380501234567", "+8613800138000"],
}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(value, id=f"{kind}-{index}")
        for kind, values in NOT_RUSSIAN_INPUTS.items()
        for index, value in enumerate(values)
    ],
)
def test_not_a_russian_number(value: str) -> None:
    assert refusal(value) == NOT_RUSSIAN


@pytest.mark.parametrize(
    "value",
    # Kazakhstan's mobiles share +7; toll-free, premium rate, landlines of Moscow and St Petersburg.
    ["+7 701 123 45 67", "+77001234567", "8-800-555-35-35", "8-809-123-45-67", "+78031234567", "+7 495 123-45-67"]
    + ["88121234567", "+70001234567"],
)
def test_plus_seven_numbers_that_are_not_russian_mobiles(value: str) -> None:
    assert refusal(value) == NOT_MOBILE


def test_length_limit_is_checked_on_the_raw_input() -> None:
    padded = "+79001234567".center(MAX_INPUT_LENGTH)
    assert len(padded) == 32
    assert normalize_phone(padded) == CANONICAL
    assert refusal(padded + " ") == TOO_LONG


@pytest.mark.parametrize(
    "value",
    ["9" * 10_240, "+7" + " " * 10_240 + "9001234567", CANONICAL + "\x00" * 10_240, "٧" * 10_240],
    ids=["digits", "spaces", "nuls", "arabic-indic"],
)
def test_ten_kilobyte_strings(value: str) -> None:
    assert refusal(value) == TOO_LONG


def test_message_follows_the_active_language() -> None:
    from django.utils import translation

    # Translated when raised, not when the module was imported.
    with translation.override("ru"):
        assert refusal("") == "Введите номер мобильного телефона."
    assert refusal("") == EMPTY


# -- phones from the provider -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("79644115786", "+79644115786"),  # auth_phone, as in docs/providers/telefon-ip.rst
        ("89644078713", "+79644078713"),  # the caller, as in the doc
        ("+79644115786", "+79644115786"),
        ("9644115786", "+79644115786"),
        (79644115786, "+79644115786"),  # unquoted JSON number
        ("74951234567", "+74951234567"),  # a Moscow number to call is fine
        ("88121234567", "+78121234567"),
        ("78005008275", "+78005008275"),  # toll-free: free for the caller, what sms.ru hands out
        (" 79644115786 ", "+79644115786"),
    ],
)
def test_parse_provider_phone_accepts_russian_numbers(value: object, expected: str) -> None:
    assert parse_provider_phone(value) == expected


@pytest.mark.parametrize(
    "value",
    # Not text, too short or long, abroad, Kazakhstan, premium rate (never ask a user to call it).
    [None, True, 7.9644115786e10, ["79644115786"], "", "null", "+7964411578", "796441157861", "12025550123"]
    + ["77011234567", "78091234567", "88091234567", "70001234567", "7964411578\n6", "7" * 10_240, -79644115786]
    + ["+\uff17\uff19\uff16\uff14\uff14\uff11\uff11\uff15\uff17\uff18\uff16"],
)
def test_parse_provider_phone_refuses_everything_else(value: object) -> None:
    assert parse_provider_phone(value) is None


# -- formatting ----------------------------------------------------------------------


def test_tel_uri() -> None:
    assert tel_uri("+79990001234") == "tel:+79990001234"


def test_format_phone() -> None:
    assert format_phone("+79001234567") == "+7 900 123-45-67"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+79001234567", "+7 900 ***-**-67"),
        ("+74951234567", "+7 495 ***-**-67"),
        ("79001234567", "***"),
        ("+7900123456", "***"),
        ("", "***"),
    ],
)
def test_mask_phone_keeps_only_the_operator_code_and_last_two_digits(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
