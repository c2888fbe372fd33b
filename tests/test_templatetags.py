"""``{% callauth_login_form %}``: exact output, escaping, and a form that really posts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.template import Context, RequestContext, Template
from django.test import Client, RequestFactory
from django.utils import translation

from django_callauth.templatetags.callauth import login_form_context

TAG = "{% load callauth %}{% callauth_login_form %}"


def render(source: str = TAG, path: str = "/login/", **context: Any) -> str:
    request = RequestFactory().get(path)
    return Template(source).render(Context({"request": request, "csrf_token": "TOKEN", **context}))


def form(*, next_field: str = "", value: str = "", error: str = "") -> str:
    """The exact markup of the form, with the parts that vary."""
    next_line = f'<input type="hidden" name="next" value="{next_field}">' if next_field else ""
    aria = 'aria-invalid="true" aria-describedby="callauth-phone-error"' if error else ""
    error_line = f'<p id="callauth-phone-error" class="callauth-error" role="alert">{error}</p>' if error else ""
    return (
        '<form class="callauth-form" method="post" action="/callauth/start/" novalidate>\n'
        '  <input type="hidden" name="csrfmiddlewaretoken" value="TOKEN">\n'
        f"  {next_line}\n"
        '  <label for="callauth-phone">Mobile phone number</label>\n'
        '  <input id="callauth-phone" name="phone" type="tel" inputmode="tel" autocomplete="tel" required\n'
        f'         maxlength="32" placeholder="+7 900 123-45-67" value="{value}"\n'
        f"         {aria}>\n"
        f"  {error_line}\n"
        '  <button type="submit">Log in by phone call</button>\n'
        '  <p class="callauth-hint">You will call a number from this phone.'
        " The call is free: it is dropped at once.</p>\n"
        "</form>\n"
    )


def test_plain_form() -> None:
    assert render() == (
        '<form class="callauth-form" method="post" action="/callauth/start/" novalidate>\n'
        '  <input type="hidden" name="csrfmiddlewaretoken" value="TOKEN">\n'
        "  \n"
        '  <label for="callauth-phone">Mobile phone number</label>\n'
        '  <input id="callauth-phone" name="phone" type="tel" inputmode="tel" autocomplete="tel" required\n'
        '         maxlength="32" placeholder="+7 900 123-45-67" value=""\n'
        "         >\n"
        "  \n"
        '  <button type="submit">Log in by phone call</button>\n'
        '  <p class="callauth-hint">You will call a number from this phone.'
        " The call is free: it is dropped at once.</p>\n"
        "</form>\n"
    )


def test_next_from_the_query_string() -> None:
    assert render(path="/login/?next=/account/settings/") == form(next_field="/account/settings/")


def test_next_from_the_view_context_wins_over_the_query_string() -> None:
    assert render(path="/login/?next=/from-query/", next="/from-view/") == form(next_field="/from-view/")


def test_next_given_to_the_tag_wins() -> None:
    source = '{% load callauth %}{% callauth_login_form next="/from-tag/" %}'
    assert render(source, path="/login/?next=/from-query/", next="/from-view/") == form(next_field="/from-tag/")


def test_error_for_the_phone_field() -> None:
    out = render(
        error_code="invalid_phone",
        error_message="Enter a Russian mobile number, for example +7 900 123-45-67.",
        callauth_phone="12345",
    )
    assert out == form(value="12345", error="Enter a Russian mobile number, for example +7 900 123-45-67.")


@pytest.mark.parametrize("code", ["provider_unavailable", "rate_limited", "", None])
def test_other_errors_are_not_shown_on_the_field(code: Any) -> None:
    # The page shows them above the form; the field itself is fine.
    out = render(
        error_code=code, error_message="The phone call service is not answering.", callauth_phone="+79001234567"
    )
    assert out == form(value="+79001234567")


def test_hostile_phone_is_escaped() -> None:
    out = render(
        error_code="invalid_phone",
        error_message="<b>bad</b>",
        callauth_phone='"><script>alert(1)</script>',
    )
    assert out == form(
        value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
        error="&lt;b&gt;bad&lt;/b&gt;",
    )
    assert "<script>" not in out


def test_hostile_next_in_the_query_string_is_escaped() -> None:
    out = render(path="/login/?next=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert out == form(next_field="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;")


def test_single_quotes_are_escaped_too() -> None:
    out = render(callauth_phone="' onfocus='alert(1)", error_code="invalid_phone", error_message="x")
    assert 'value="&#x27; onfocus=&#x27;alert(1)"' in out


def test_without_a_request() -> None:
    out = Template(TAG).render(Context({"csrf_token": "TOKEN"}))
    assert out == form()


def test_translated_to_russian() -> None:
    with translation.override("ru"):
        out = render()
    label = re.search(r'<label for="callauth-phone">([^<]+)</label>', out)
    button = re.search(r'<button type="submit">([^<]+)</button>', out)
    assert label and button, out
    for text in (label.group(1), button.group(1)):
        assert re.fullmatch(r"[А-Яа-яЁё ]+", text), text


# -- the pure function --------------------------------------------------------------


def test_login_form_context() -> None:
    request = RequestFactory().get("/login/?next=/a/")
    assert login_form_context(request, csrf_token="T", phone="+7", error="E") == {
        "action": "/callauth/start/",
        "csrf_token": "T",
        "next": "/a/",
        "phone": "+7",
        "error": "E",
    }
    assert login_form_context(None)["next"] == ""
    assert login_form_context(request, next_url="/b/")["next"] == "/b/"


# -- a real request ----------------------------------------------------------------


def test_request_context_gives_a_csrf_token() -> None:
    request = RequestFactory().get("/login/")
    out = Template(TAG).render(RequestContext(request))
    match = re.search(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]{64})"', out)
    assert match, out


@pytest.mark.django_db
def test_the_rendered_form_posts_past_csrf_protection(settings: Any) -> None:
    settings.CALLAUTH_PROVIDER = "sandbox"
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/?next=/after/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page
    assert '<input type="hidden" name="next" value="/after/">' in page
    refused = client.post("/callauth/start/", {"phone": "+79001234567"})
    assert refused.status_code == 403
    response = client.post("/callauth/start/", {"csrfmiddlewaretoken": token.group(1), "phone": "+79001234567"})
    assert response.status_code == 302
    assert response["Location"] == "/callauth/challenge/"
