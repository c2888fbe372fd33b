"""Where a login may send the browser afterwards: only to this site (invariant 11)."""

from __future__ import annotations

import logging
import re

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from ..models import NEXT_URL_MAX_LENGTH

logger = logging.getLogger("django_callauth")


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(request: HttpRequest, url: object) -> str:
    """``url`` if it is safe to redirect to after login, else "" (invariant 11)."""
    if not isinstance(url, str) or not url:
        return ""
    # A safe URL is percent-encoded; raw control characters (PostgreSQL refuses NUL) or
    # more than the column holds could not even be stored: a 500 instead of a login.
    if len(url) > NEXT_URL_MAX_LENGTH or _CONTROL_CHARS.search(url):
        return ""
    allowed = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if allowed else ""
