"""``{% load callauth %}`` then ``{% callauth_login_form %}`` on a login page."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest
from django.urls import reverse

register = template.Library()


def login_form_context(
    request: HttpRequest | None, *, csrf_token: Any = None, next_url: str = "", phone: str = "", error: str = ""
) -> dict[str, Any]:
    """Everything the phone form needs; ``next`` falls back to the page's ``?next=``."""
    if not next_url and request is not None:
        next_url = request.GET.get("next", "")
    return {
        "action": reverse("callauth:start"),
        "csrf_token": csrf_token,
        "next": next_url,
        "phone": phone,
        "error": error,
    }


@register.inclusion_tag("callauth/login_form.html", takes_context=True)
def callauth_login_form(context: template.Context, next: str = "") -> dict[str, Any]:  # noqa: A002
    return login_form_context(
        context.get("request"),
        csrf_token=context.get("csrf_token"),
        next_url=next or context.get("next", "") or "",
        phone=context.get("callauth_phone", "") or "",
        error=context.get("error_message", "") if context.get("error_code") == "invalid_phone" else "",
    )
