"""What the template tags render, as pure typed functions (templatetags/callauth.py wraps them).

Each function returns the context of one small template under ``callauth/parts/``, so a
project can override the markup and still get the values computed here. Nothing here
reads settings or the database: the tests check each function's exact output.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import ngettext

from ..phones import format_phone, tel_uri
from .qr import qr_data_uri

STYLESHEET = "callauth/callauth.css"

#: A number per CLDR plural category (``Intl.PluralRules``), to render each category's
#: form with ``ngettext``. Right for Russian (1 · 3 · 5) and English (1 · 10); a language
#: whose categories hold other numbers gets the form of these samples.
PLURAL_SAMPLES = {"one": 1, "few": 3, "many": 5, "other": 10}
#: What the script replaces with the number of seconds in a plural form.
COUNT_MARK = "{n}"

# The request attribute that says this page already links the stylesheet.
_CSS_LINKED = "_callauth_css_linked"


def stylesheet_link(href: str) -> SafeString:
    """The ``<link>`` of the app's stylesheet at ``href``."""
    return format_html('<link rel="stylesheet" href="{}">', href)


def mark_stylesheet_linked(request: HttpRequest | None) -> None:
    """Remember that this page links the stylesheet, so the phone form does not link it again."""
    if request is not None:
        setattr(request, _CSS_LINKED, True)


def stylesheet_linked(request: HttpRequest | None) -> bool:
    return bool(getattr(request, _CSS_LINKED, False))


def seconds_left_text(seconds: int) -> str:
    """ "95 seconds left" in the active language, with the plural form of ``seconds``."""
    return ngettext("%(count)s second left", "%(count)s seconds left", seconds) % {"count": seconds}


def countdown_context(expires_in: int, ttl: int) -> dict[str, Any]:
    """The countdown: the text now, the bar, and every plural form the script may need."""
    expires_in = max(0, int(expires_in))
    forms = {
        category: ngettext("%(count)s second left", "%(count)s seconds left", sample) % {"count": COUNT_MARK}
        for category, sample in PLURAL_SAMPLES.items()
    }
    return {
        "expires_in": expires_in,
        "ttl": max(int(ttl), expires_in, 1),
        "text": seconds_left_text(expires_in),
        "forms": forms,
    }


def number_context(call_to: str, *, copy: bool = True) -> dict[str, Any]:
    """The number to call in large grouped digits; ``copy`` adds a button that copies it."""
    return {"display": format_phone(call_to), "e164": call_to, "copy": copy}


def call_button_context(call_to: str) -> dict[str, Any]:
    """The ``tel:`` button: on a phone, the one thing to press."""
    return {"tel_uri": tel_uri(call_to), "display": format_phone(call_to)}


def qr_context(call_to: str, *, size: int = 200) -> dict[str, Any]:
    """A QR code of the ``tel:`` URI, drawn locally, for a phone's camera."""
    return {"src": qr_data_uri(tel_uri(call_to)), "display": format_phone(call_to), "size": size}
