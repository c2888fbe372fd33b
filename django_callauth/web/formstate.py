"""A start refused from a project's own page is shown on that page, with the phone kept.

The phone form posts a hidden ``from``: the path of the page it is on. When ``start``
refuses the phone (a typo) or the start (a rate limit, the provider down), it keeps the
phone and the error in the session and redirects back there; the form tag takes them
out on its next render, once. JSON clients never send ``from`` and get their error as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.sessions.backends.base import SessionBase

SESSION_KEY = "_callauth_form"


@dataclass(frozen=True)
class KeptForm:
    """What the phone form shows again: the phone as typed, and why it was refused."""

    page: str
    phone: str
    code: str
    message: str


def keep(session: SessionBase, kept: KeptForm) -> None:
    session[SESSION_KEY] = {"page": kept.page, "phone": kept.phone, "code": kept.code, "message": kept.message}


def take(session: SessionBase | None, page: str) -> KeptForm | None:
    """The kept form if it was kept for ``page``; taken out of the session either way.

    A refusal kept for another page (the person went elsewhere) is dropped: it would be
    shown out of place.
    """
    if session is None or SESSION_KEY not in session:
        return None
    data = session.pop(SESSION_KEY)
    if not isinstance(data, dict) or data.get("page") != page:
        return None
    phone, code, message = data.get("phone"), data.get("code"), data.get("message")
    if not (isinstance(phone, str) and isinstance(code, str) and isinstance(message, str)):
        return None
    return KeptForm(page, phone, code, message)
