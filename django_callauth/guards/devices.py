"""The device cookie: a browser that proved a phone by a call keeps a start allowance of its own.

The anonymous limits per phone and for the whole site can be filled by strangers: three
starts for someone's phone, or a botnet spending the day's budget, would lock the owner
out (docs/security.rst, invariant 17). So a login by call, and a phone added by call, leave
a signed cookie in the browser: a random device id and, for each phone this browser proved
(the last ``MAX_PHONES``), a digest keyed by the site's secret and the device id. A start
for a phone the cookie proves is counted per device and phone instead (guards/limits.py),
where strangers' starts never land.

The cookie holds no phone and no secret in the clear, and it logs nobody in: stolen, it
gives only what its owner had, a few starts for her own phones. A forged, tampered or
expired cookie is no cookie; copied to many machines, it is one device with one counter.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare, salted_hmac

from ..conf import app_settings

#: Signs the cookie; a salt of its own, so no other signed value of the site passes for one.
SALT = "django_callauth.guards.devices"
#: Keys the phone digests: the same phone gives another digest in every browser.
PHONE_SALT = "django_callauth.guards.devices.phone"
#: The phones a cookie remembers, the latest proved kept: a bounded cookie (about 200 bytes).
MAX_PHONES = 5


def _phone_digest(device: str, phone: str) -> str:
    return salted_hmac(PHONE_SALT, f"{device}:{phone}", algorithm="sha256").hexdigest()[:20]


def _read(request: HttpRequest) -> tuple[str, list[str]] | None:
    """(device id, phone digests) of the browser's valid cookie, or None."""
    value = request.COOKIES.get(app_settings.DEVICE_COOKIE_NAME)
    if not value:
        return None
    try:
        data = signing.loads(value, salt=SALT, max_age=app_settings.DEVICE_COOKIE_AGE)
    except signing.BadSignature:  # forged, tampered, or expired (SignatureExpired is one)
        return None
    device, digests = (data.get("d"), data.get("p")) if isinstance(data, dict) else (None, None)
    # Signed by this site, so ours; a shape other than ours is a version that no longer counts.
    if not isinstance(device, str) or not isinstance(digests, list):
        return None
    return device, [digest for digest in digests if isinstance(digest, str)]


def proven_device(request: HttpRequest, phone: str) -> str | None:
    """The device id of this browser if its cookie proves ``phone``, else None (an anonymous start)."""
    known = _read(request)
    if known is None:
        return None
    device, digests = known
    expected = _phone_digest(device, phone)
    return device if any(constant_time_compare(expected, digest) for digest in digests) else None


def remember(request: HttpRequest, response: HttpResponse, phone: str) -> None:
    """Record on ``response`` that this browser just proved ``phone`` by a call; renews the cookie."""
    known = _read(request)
    device, digests = known if known is not None else (secrets.token_urlsafe(16), [])
    digest = _phone_digest(device, phone)
    kept = [d for d in digests if d != digest][-(MAX_PHONES - 1) :] + [digest]
    response.set_cookie(
        app_settings.DEVICE_COOKIE_NAME,
        signing.dumps({"d": device, "p": kept}, salt=SALT),
        max_age=app_settings.DEVICE_COOKIE_AGE,
        path=settings.SESSION_COOKIE_PATH,
        domain=settings.SESSION_COOKIE_DOMAIN,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
