"""``{% load callauth %}``: each tag's exact output, escaping, the pure functions under them, a form that posts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.template import Context, RequestContext, Template
from django.test import Client, RequestFactory
from django.urls import resolve

from django_callauth.templatetags.callauth import account_name, page_to_return_to, url_with_next
from django_callauth.web import formstate
from django_callauth.web.parts import (
    countdown_context,
    qr_context,
    stylesheet_link,
)

TAG = "{% load callauth %}{% callauth_login_form %}"
CSS = '<link rel="stylesheet" href="/static/callauth/callauth.css">'
HINT = "You will call a number from this phone. The call is free: it is dropped at once."
COPY_ICON = (
    '<svg class="callauth-icon" viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false"'
    ' fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
    '<rect x="9" y="9" width="11" height="11" rx="2"/>'
    '<path d="M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1"/></svg>'
)
PHONE_ICON = (
    '<svg class="callauth-icon" viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false"'
    ' fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
    '<path d="M5 3h3l2 5-2.5 1.5a11 11 0 0 0 7 7L16 14l5 2v3a2 2 0 0 1-2 2A16 16 0 0 1 3 5a2 2 0 0 1 2-2z"/></svg>'
)


def render(source: str = TAG, path: str = "/login/", request: Any = None, **context: Any) -> str:
    request = request or RequestFactory().get(path)
    return Template(source).render(Context({"request": request, "csrf_token": "TOKEN", **context}))


def form(
    *,
    next_field: str = "",
    from_field: str = "/login/",
    value: str = "",
    error: str = "",
    form_error: str = "",
    css: bool = True,
) -> str:
    """The exact markup of the phone form, with the parts that vary."""
    next_line = f'<input type="hidden" name="next" value="{next_field}">' if next_field else ""
    from_line = f'<input type="hidden" name="from" value="{from_field}">' if from_field else ""
    form_error_line = f'<p class="callauth-error" role="alert">{form_error}</p>' if form_error else ""
    described = "callauth-phone-error callauth-phone-hint" if error else "callauth-phone-hint"
    invalid = ' aria-invalid="true" autofocus' if error else ""
    error_line = f'<p id="callauth-phone-error" class="callauth-field-error" role="alert">{error}</p>' if error else ""
    return (
        '<form class="callauth-form" method="post" action="/callauth/start/" novalidate>\n'
        f"  {CSS if css else ''}\n"
        '  <input type="hidden" name="csrfmiddlewaretoken" value="TOKEN">\n'
        f"  {next_line}\n"
        f"  {from_line}\n"
        f"  {form_error_line}\n"
        '  <label class="callauth-label" for="callauth-phone">Mobile phone number</label>\n'
        '  <input class="callauth-input" id="callauth-phone" name="phone" type="tel" inputmode="tel"'
        ' autocomplete="tel" required\n'
        f'         maxlength="32" placeholder="+7 900 123-45-67" value="{value}"\n'
        f'         aria-describedby="{described}"{invalid}>\n'
        f"  {error_line}\n"
        f'  <p id="callauth-phone-hint" class="callauth-hint">{HINT}</p>\n'
        '  <button type="submit" class="callauth-button">Log in by phone call</button>\n'
        "</form>\n"
    )


# -- the phone form -------------------------------------------------------------------


def test_plain_form_brings_the_stylesheet_and_says_where_it_is() -> None:
    assert render() == (
        '<form class="callauth-form" method="post" action="/callauth/start/" novalidate>\n'
        f"  {CSS}\n"
        '  <input type="hidden" name="csrfmiddlewaretoken" value="TOKEN">\n'
        "  \n"
        '  <input type="hidden" name="from" value="/login/">\n'
        "  \n"
        '  <label class="callauth-label" for="callauth-phone">Mobile phone number</label>\n'
        '  <input class="callauth-input" id="callauth-phone" name="phone" type="tel" inputmode="tel"'
        ' autocomplete="tel" required\n'
        '         maxlength="32" placeholder="+7 900 123-45-67" value=""\n'
        '         aria-describedby="callauth-phone-hint">\n'
        "  \n"
        f'  <p id="callauth-phone-hint" class="callauth-hint">{HINT}</p>\n'
        '  <button type="submit" class="callauth-button">Log in by phone call</button>\n'
        "</form>\n"
    )


def test_a_page_that_links_the_stylesheet_gets_no_second_link() -> None:
    out = render("{% load callauth %}{% callauth_css %}|" + TAG)
    assert out == f"{CSS}|" + form(css=False)


HOSTILE_NEXT = "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"


@pytest.mark.parametrize(
    ("source", "path", "context", "next_field"),
    [
        (TAG, "/login/?next=/account/settings/", {}, "/account/settings/"),
        (TAG, "/login/?next=/from-query/", {"next": "/from-view/"}, "/from-view/"),
        (
            '{% load callauth %}{% callauth_login_form next="/from-tag/" %}',
            "/login/?next=/from-query/",
            {"next": "/from-view/"},
            "/from-tag/",
        ),
        (TAG, f"/login/?next={HOSTILE_NEXT}", {}, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
    ],
    ids=["from-the-query-string", "view-context-wins-over-query", "tag-argument-wins", "hostile-is-escaped"],
)
def test_next_and_the_page_it_is_on(source: str, path: str, context: dict[str, str], next_field: str) -> None:
    assert render(source, path=path, **context) == form(next_field=next_field, from_field=path)


OTHER_REFUSALS = ["provider_unavailable", "rate_limited", "no_flow"]


@pytest.mark.parametrize(
    ("code", "message", "phone", "expected"),
    [
        ("invalid_phone", "Enter a Russian mobile number.", "12345", {"error": "Enter a Russian mobile number."}),
        # Any other refusal: the field itself is fine, the start was refused.
        *[(code, "Not answering.", "+7900", {"form_error": "Not answering."}) for code in OTHER_REFUSALS],
        *[(code, "Something", "", {}) for code in ["", None]],  # a message without a code is not shown
        (
            "invalid_phone",
            "<b>bad</b>",
            '"><script>alert(1)</script>',
            {"value": "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;", "error": "&lt;b&gt;bad&lt;/b&gt;"},
        ),
        ("invalid_phone", "x", "' onfocus='alert(1)", {"value": "&#x27; onfocus=&#x27;alert(1)", "error": "x"}),
    ],
    ids=["invalid_phone", *OTHER_REFUSALS, "empty-code", "no-code", "hostile-escaped", "single-quotes-escaped"],
)
def test_a_refusal_in_the_context_is_shown(
    code: str | None, message: str, phone: str, expected: dict[str, str]
) -> None:
    out = render(error_code=code, error_message=message, callauth_phone=phone)
    assert out == form(**{"value": phone, **expected})


def test_without_a_request() -> None:
    out = Template(TAG).render(Context({"csrf_token": "TOKEN"}))
    assert out == form(from_field="")


# -- a refusal sent back to the page the form is on ------------------------------------------


def session_with(kept: formstate.KeptForm | None) -> SessionStore:
    session = SessionStore()
    if kept is not None:
        formstate.keep(session, kept)
    return session


def test_a_refusal_kept_for_this_page_is_shown_once_with_the_phone() -> None:
    request = RequestFactory().get("/login/?next=/a/")
    request.session = session_with(formstate.KeptForm("/login/?next=/a/", "+7 800", "invalid_phone", "Not mobile."))
    out = render(request=request)
    assert out == form(next_field="/a/", from_field="/login/?next=/a/", value="+7 800", error="Not mobile.")
    assert formstate.SESSION_KEY not in request.session
    again = RequestFactory().get("/login/?next=/a/")
    again.session = request.session
    assert render(request=again) == form(next_field="/a/", from_field="/login/?next=/a/")


@pytest.mark.parametrize(
    ("kept", "expected"),
    [
        (
            formstate.KeptForm("/login/", "+79001234567", "rate_limited", "Wait 5 minutes."),
            {"value": "+79001234567", "form_error": "Wait 5 minutes."},
        ),
        (formstate.KeptForm("/elsewhere/", "+7 800", "invalid_phone", "Not mobile."), {}),
    ],
    ids=["rate-limit-said-above-the-field", "for-another-page-dropped"],
)
def test_a_kept_refusal(kept: formstate.KeptForm, expected: dict[str, str]) -> None:
    request = RequestFactory().get("/login/")
    request.session = session_with(kept)
    assert render(request=request) == form(**expected)
    assert formstate.SESSION_KEY not in request.session


@pytest.mark.parametrize(
    "stored", ["junk", {"page": "/login/"}, {"page": "/login/", "phone": 1, "code": "", "message": ""}]
)
def test_a_malformed_kept_form_is_dropped(stored: Any) -> None:
    session = SessionStore()
    session[formstate.SESSION_KEY] = stored
    assert formstate.take(session, "/login/") is None
    assert formstate.SESSION_KEY not in session


def test_page_to_return_to() -> None:
    factory = RequestFactory()
    assert page_to_return_to(None) == ""
    assert page_to_return_to(factory.get("/login/?next=/a/&x=%22")) == "/login/?next=/a/&x=%22"
    assert page_to_return_to(factory.post("/login/")) == ""  # a redirect could not show that page again
    own_page = factory.get("/callauth/challenge/")
    own_page.resolver_match = resolve("/callauth/challenge/")
    assert page_to_return_to(own_page) == ""  # the app's pages show refusals themselves


# -- the pure functions under the form ---------------------------------------------------------


def test_url_with_next() -> None:
    assert url_with_next("/login/", "") == "/login/"
    assert url_with_next("/login/", "/a/?b=1") == "/login/?next=/a/%3Fb%3D1"
    assert url_with_next("/login/?lang=ru&next=/old/", "/new/") == "/login/?lang=ru&next=/new/"


def test_stylesheet_link() -> None:
    assert stylesheet_link('/s.css?"x"') == '<link rel="stylesheet" href="/s.css?&quot;x&quot;">'


# -- the parts of a challenge page -----------------------------------------------------------


def test_number() -> None:
    assert render('{% load callauth %}{% callauth_number "+79990001234" %}') == (
        '<div class="callauth-number">\n'
        '  <span class="callauth-number-digits">+7 999 000-12-34</span>\n'
        '  <button type="button" class="callauth-button callauth-button-quiet callauth-copy"'
        ' data-callauth-copy="+79990001234" data-text-copied="Number copied" hidden>'
        f"{COPY_ICON}<span>Copy the number</span></button>\n"
        '  <span class="callauth-sr-only" role="status" data-callauth-copied></span>\n'
        "</div>\n"
    )


def test_number_without_the_copy_button() -> None:
    assert render("{% load callauth %}{% callauth_number call_to copy=False %}", call_to="+79990001234") == (
        '<div class="callauth-number">\n  <span class="callauth-number-digits">+7 999 000-12-34</span>\n  \n</div>\n'
    )


def test_call_button() -> None:
    assert render('{% load callauth %}{% callauth_call_button "+79990001234" %}') == (
        f'<a class="callauth-button callauth-call" href="tel:+79990001234">{PHONE_ICON}'
        "<span>Call +7 999 000-12-34</span></a>\n"
    )


def test_qr() -> None:
    out = render('{% load callauth %}{% callauth_qr "+79990001234" size=160 %}')
    src = qr_context("+79990001234")["src"]
    assert out == (
        '<figure class="callauth-qr-figure">\n'
        f'  <img class="callauth-qr" src="{src}" width="160" height="160" alt="QR code to call +7 999 000-12-34">\n'
        "  <figcaption>Scan with your phone's camera to call</figcaption>\n"
        "</figure>\n"
    )


def test_countdown() -> None:
    assert render("{% load callauth %}{% callauth_countdown 95 %}") == (
        '<div class="callauth-countdown" data-callauth-countdown data-expires-in="95"'
        ' data-plural-one="{n} second left" data-plural-few="{n} seconds left"'
        ' data-plural-many="{n} seconds left" data-plural-other="{n} seconds left">\n'
        '  <span class="callauth-countdown-text" role="timer">95 seconds left</span>\n'
        '  <progress class="callauth-countdown-bar" max="120" value="95" aria-hidden="true"></progress>\n'
        "</div>\n"
    )


def test_login_url_tag() -> None:
    assert render('{% load callauth %}{% callauth_login_url "/a/" %}') == "/login/?next=/a/"
    assert render("{% load callauth %}{% callauth_login_url %}") == "/login/"


def test_account_tag_names_the_logged_in_account_escaped(django_user_model: Any) -> None:
    request = RequestFactory().get("/")
    request.user = django_user_model(username="<b>alice</b>")
    assert render("{% load callauth %}{% callauth_account %}", request=request) == "&lt;b&gt;alice&lt;/b&gt;"
    source = "{% load callauth %}{% callauth_account as account %}[{{ account }}]"
    assert render(source, request=request) == "[&lt;b&gt;alice&lt;/b&gt;]"


def test_account_tag_is_empty_for_nobody() -> None:
    request = RequestFactory().get("/")
    assert render("{% load callauth %}[{% callauth_account %}]", request=request) == "[]"  # no user at all
    request.user = AnonymousUser()
    assert render("{% load callauth %}[{% callauth_account %}]", request=request) == "[]"


def test_account_tag_finds_the_request_of_a_page_without_the_request_context_processor(
    django_user_model: Any,
) -> None:
    request = RequestFactory().get("/")
    request.user = django_user_model(username="alice")
    assert Template("{% load callauth %}{% callauth_account %}").render(RequestContext(request)) == "alice"


class NamelessUser:
    """A user-like object without ``get_username`` (a custom model may not inherit one)."""

    def __str__(self) -> str:
        return "user 7"


def test_account_name_is_the_username_else_str(django_user_model: Any) -> None:
    assert account_name(django_user_model(username="alice")) == "alice"
    assert account_name(NamelessUser()) == "user 7"


def test_the_countdown_is_never_past_its_end_nor_negative() -> None:
    assert countdown_context(-3, 120)["expires_in"] == 0
    assert countdown_context(150, 120)["ttl"] == 150


# -- a real request ----------------------------------------------------------------


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
