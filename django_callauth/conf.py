"""Every ``CALLAUTH_*`` setting, typed, with its default.

Settings are read at access time, never cached at import, so ``override_settings``
and the ``settings`` fixture of pytest-django just work.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

#: Limits on provider-billed starts, by scope (throttling.py). ``CALLAUTH_RATE_LIMITS`` is
#: merged over these; a scope set to ``None`` is off.
DEFAULT_RATE_LIMITS: dict[str, str | None] = {
    "ip": "10/m,100/h",  # per client address; IPv6 counted per /64
    "ipv6_56": "20/m,200/h",  # per IPv6 /56: a household's delegation
    "ipv6_48": "30/m,300/h,1000/d",  # per IPv6 /48: a site's allocation, or a free tunnel broker's
    "phone": "3/10m,10/d",  # per phone number to log in, from browsers that never proved it
    "global": "1000/h,10000/d",  # every billed start of browsers that never proved their phone
    "device": "3/10m,10/d",  # per returning browser and phone it proved by a call (devices.py)
    "device_phone": "6/10m,20/d",  # per phone, from all the browsers that proved it
}


def get_setting(name: str, default: Any) -> Any:
    """``settings.CALLAUTH_<name>``, or ``default`` when it is not set.

    Providers read their own settings through this (each provider module owns its names,
    defaults and checks), so this module lists only the ones the whole app shares.
    """
    return getattr(django_settings, f"CALLAUTH_{name}", default)


_get = get_setting
_UNSET = object()


class CallAuthSettings:
    @property
    def PROVIDERS(self) -> list[str]:
        """``CALLAUTH_PROVIDER`` as a list: one provider, or several to fail over in order.

        Each is a built-in name (``"telefon_ip"``, ``"sms_ru"``, ``"sandbox"``) or a dotted
        path to a provider class. The first starts every flow it can.
        """
        value = _get("PROVIDER", "telefon_ip")
        if isinstance(value, (list, tuple)):
            return [str(name) for name in value]
        return [str(value)]

    @property
    def PROVIDER(self) -> str:
        """The first of ``PROVIDERS``: the one asked first ("" for an empty list)."""
        providers = self.PROVIDERS
        return providers[0] if providers else ""

    @property
    def WEBHOOK_BASE_URL(self) -> str:
        """The site's public origin; when set, flows start in webhook mode."""
        return str(_get("WEBHOOK_BASE_URL", "") or "").rstrip("/")

    @property
    def WEBHOOK_VERIFY(self) -> bool:
        """Ask the provider's ``check`` before trusting a webhook (docs/security.rst, invariant 2)."""
        return bool(_get("WEBHOOK_VERIFY", True))

    @property
    def TTL(self) -> int | None:
        """Seconds a number to call is shown, or None when unset: each provider's own lifetime.

        A flow never lasts longer than its provider's numbers live (``starting.ttl_for``).
        """
        value = _get("TTL", _UNSET)
        return None if value is _UNSET else int(value)

    @property
    def COMPLETE_WINDOW(self) -> int:
        """Seconds after confirmation during which the browser may finish the login."""
        return int(_get("COMPLETE_WINDOW", 300))

    @property
    def CHECK_INTERVAL(self) -> int:
        """At most one provider ``check`` per flow per this many seconds."""
        return int(_get("CHECK_INTERVAL", 3))

    @property
    def SIGNUP(self) -> bool:
        """Create an account for a phone that has none."""
        return bool(_get("SIGNUP", False))

    @property
    def ALLOW_STAFF(self) -> bool:
        """Let staff and superusers log in by call (off: caller ID can be spoofed)."""
        return bool(_get("ALLOW_STAFF", False))

    @property
    def ADAPTER(self) -> str:
        return str(_get("ADAPTER", "django_callauth.adapter.CallAuthAdapter"))

    @property
    def RATE_LIMITS(self) -> dict[str, str | None]:
        """Rate strings (``"10/m,100/h"``) by scope, the defaults merged with the setting."""
        return {**DEFAULT_RATE_LIMITS, **dict(_get("RATE_LIMITS", {}) or {})}

    @property
    def CACHE(self) -> str:
        """The ``CACHES`` alias shared by every process: rate limits, start locks, flows' state."""
        return str(_get("CACHE", "default"))

    @property
    def TRUSTED_PROXY_COUNT(self) -> int:
        """How many rightmost ``X-Forwarded-For`` entries the site's own proxies added (0: none)."""
        return int(_get("TRUSTED_PROXY_COUNT", 0))

    @property
    def TRUSTED_CLIENT_IP_HEADER(self) -> str:
        """A header the site's proxy sets to the client's address, e.g. ``"X-Real-IP"`` ("" : none)."""
        return str(_get("TRUSTED_CLIENT_IP_HEADER", "") or "")

    @property
    def SANDBOX_IN_PRODUCTION(self) -> bool:
        """Let the sandbox start flows with ``DEBUG = False`` (anyone could log in as anyone)."""
        return bool(_get("SANDBOX_IN_PRODUCTION", False))

    @property
    def CLEANUP_AFTER_DAYS(self) -> int:
        """``callauth_cleanup`` deletes finished flows older than this many days."""
        return int(_get("CLEANUP_AFTER_DAYS", 30))

    @property
    def DEVICE_COOKIE_NAME(self) -> str:
        """The cookie naming a browser that proved a phone by a call (devices.py)."""
        return str(_get("DEVICE_COOKIE_NAME", "callauth_device"))

    @property
    def DEVICE_COOKIE_AGE(self) -> int:
        """Seconds a device cookie counts after the last proof it holds (a login or a phone added)."""
        return int(_get("DEVICE_COOKIE_AGE", 365 * 86400))


app_settings = CallAuthSettings()
