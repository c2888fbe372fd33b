"""``{% load callauth %}``: the phone form, the stylesheet, and the parts of a challenge page.

Every tag is a thin wrapper: what it shows is computed by a pure function (here, or in
``django_callauth.web.parts``) and rendered by an overridable template under ``callauth/``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django import template
from django.conf import settings
from django.http import HttpRequest, QueryDict
from django.shortcuts import resolve_url
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import SafeString

from ..conf import app_settings
from ..errors import ErrorCode
from ..web import formstate
from ..web.parts import (
    STYLESHEET,
    call_button_context,
    countdown_context,
    mark_stylesheet_linked,
    number_context,
    qr_context,
    stylesheet_link,
    stylesheet_linked,
)

register = template.Library()


def login_form_context(
    request: HttpRequest | None,
    *,
    csrf_token: Any = None,
    next_url: str = "",
    phone: str = "",
    error: str = "",
    form_error: str = "",
    from_url: str = "",
    stylesheet: str = "",
) -> dict[str, Any]:
    """Everything the phone form needs; ``next`` falls back to the page's ``?next=``.

    ``error`` is about the phone field, ``form_error`` about the start (a rate limit, the
    provider down); ``stylesheet`` is the href to link, or "" when the page links it already.
    """
    if not next_url and request is not None:
        next_url = request.GET.get("next", "")
    return {
        "action": reverse("callauth:start"),
        "csrf_token": csrf_token,
        "next": next_url,
        "from_url": from_url,
        "phone": phone,
        "error": error,
        "form_error": form_error,
        "stylesheet": stylesheet,
    }


def page_to_return_to(request: HttpRequest | None) -> str:
    """The page the form is on, for ``start`` to send a refusal back to; "" when there is none.

    The app's own pages answer a refusal themselves, and a page that answered a POST
    cannot be shown again by a redirect.
    """
    if request is None or request.method not in ("GET", "HEAD"):
        return ""
    match = getattr(request, "resolver_match", None)
    if match is not None and "callauth" in match.namespaces:
        return ""
    return request.get_full_path()


def url_with_next(url: str, next_url: str) -> str:
    """``url`` with ``?next=next_url`` added (any other query kept); ``url`` when there is no next."""
    if not next_url:
        return url
    parts = urlsplit(url)
    query = QueryDict(parts.query, mutable=True)
    query["next"] = next_url
    return urlunsplit(parts._replace(query=query.urlencode(safe="/")))


@register.inclusion_tag("callauth/login_form.html", takes_context=True)
def callauth_login_form(context: template.Context, next: str = "") -> dict[str, Any]:
    request = context.get("request")
    page = page_to_return_to(request)
    kept = formstate.take(getattr(request, "session", None), page) if page else None
    if kept is not None:
        phone, code, message = kept.phone, kept.code, kept.message
    else:
        phone = context.get("callauth_phone", "") or ""
        code = context.get("error_code", "") or ""
        message = context.get("error_message", "") or ""
    stylesheet = "" if stylesheet_linked(request) else static(STYLESHEET)
    mark_stylesheet_linked(request)
    return login_form_context(
        request,
        csrf_token=context.get("csrf_token"),
        next_url=next or context.get("next", "") or "",
        phone=phone,
        error=message if code == ErrorCode.INVALID_PHONE else "",
        form_error=message if code and code != ErrorCode.INVALID_PHONE else "",
        from_url=page,
        stylesheet=stylesheet,
    )


@register.simple_tag(takes_context=True)
def callauth_css(context: template.Context) -> SafeString:
    """``<link>`` to the app's stylesheet, for a page's ``<head>``; the phone form then links none."""
    request = context.get("request")
    mark_stylesheet_linked(request)
    return stylesheet_link(static(STYLESHEET))


@register.inclusion_tag("callauth/parts/number.html")
def callauth_number(call_to: str, copy: bool = True) -> dict[str, Any]:
    return number_context(call_to, copy=copy)


@register.inclusion_tag("callauth/parts/call_button.html")
def callauth_call_button(call_to: str) -> dict[str, Any]:
    return call_button_context(call_to)


@register.inclusion_tag("callauth/parts/qr.html")
def callauth_qr(call_to: str, size: int = 200) -> dict[str, Any]:
    return qr_context(call_to, size=size)


@register.inclusion_tag("callauth/parts/countdown.html")
def callauth_countdown(expires_in: int, ttl: int | None = None) -> dict[str, Any]:
    """``ttl``: the number's whole lifetime, for the bar (default ``CALLAUTH_TTL``, else full now)."""
    return countdown_context(expires_in, ttl if ttl is not None else (app_settings.TTL or expires_in))


@register.simple_tag
def callauth_login_url(next_url: str = "") -> str:
    """``LOGIN_URL`` (a path or a URL name), with ``?next=``: where to start with another phone."""
    return url_with_next(resolve_url(settings.LOGIN_URL), next_url)


def account_name(user: Any) -> str:
    """How a page names an account: its ``get_username()``, else ``str(user)``."""
    get_username = getattr(user, "get_username", None)
    return str((get_username() if callable(get_username) else "") or user)


@register.simple_tag(takes_context=True)
def callauth_account(context: template.Context) -> str:
    """The logged-in account's name, so a page says which account a phone is added to ("" for nobody).

    Plain text, escaped like any value (a username may hold ``<``).
    """
    # A page rendered by render() has its request even without the "request" context processor.
    request = getattr(context, "request", None) or context.get("request")
    user = getattr(request, "user", None)
    return account_name(user) if user is not None and user.is_authenticated else ""
