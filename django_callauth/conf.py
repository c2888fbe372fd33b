"""Every ``CALLAUTH_*`` setting, typed, with its default and what it must be.

Settings are read at access time, never cached at import, so ``override_settings``
and the ``settings`` fixture of pytest-django just work.

Each setting is declared once, as a ``Setting``: its name, default, ``Rule`` (what a value
must be) and doc. The system check callauth.E013 (checks.py) walks every declaration, the
app's below and each provider's ``settings``; reading a value the rule refuses raises
``SettingError`` naming it, so a wrong value is never used with another meaning ("false"
is true to Python). gunicorn never runs the checks, so that read is the last defence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar, cast, overload

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from .phones import InvalidPhoneNumber, normalize_phone

#: Limits on provider-billed starts, by scope (guards/limits.py). ``CALLAUTH_RATE_LIMITS`` is
#: merged over these; a scope set to ``None`` is off.
DEFAULT_RATE_LIMITS: dict[str, str | None] = {
    "ip": "10/m,100/h",  # per client address; IPv6 counted per /64
    "ipv6_56": "20/m,200/h",  # per IPv6 /56: a household's delegation
    "ipv6_48": "30/m,300/h,1000/d",  # per IPv6 /48: a site's allocation, or a free tunnel broker's
    "phone": "3/10m,10/d",  # per phone number to log in, from browsers that never proved it
    "global": "1000/h,10000/d",  # every billed start of browsers that never proved their phone
    "device": "3/10m,10/d",  # per returning browser and phone it proved by a call (guards/devices.py)
    "device_phone": "6/10m,20/d",  # per phone, from all the browsers that proved it
}

T = TypeVar("T")
_UNSET = object()


def get_setting(name: str, default: Any) -> Any:
    """``settings.CALLAUTH_<name>``, or ``default`` when it is not set (unchecked; prefer a ``Setting``)."""
    return getattr(django_settings, f"CALLAUTH_{name}", default)


#: Unchecked; for a property not yet declared as a ``Setting`` (declare it: callauth.E013).
_get = get_setting


class SettingError(ImproperlyConfigured):
    """A ``CALLAUTH_*`` setting of the wrong type or out of range, read at run time."""


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Rule:
    """What a setting's value must be: ``must_be`` says it in words, ``accepts`` decides it.

    ``clean`` turns an accepted value into the one the code uses (``None`` into ``""``,
    a single timeout into a pair).
    """

    must_be: str
    accepts: Callable[[Any], bool]
    clean: Callable[[Any], Any] = _same


def _is_int(value: object) -> bool:
    return type(value) is int  # not bool, which is an int to Python


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(cast(float, value))


BOOLEAN = Rule("True or False", lambda value: type(value) is bool)


def integer(minimum: int, *, unit: str = "", none: bool = False) -> Rule:
    """An int (never a bool or a str) of at least ``minimum``; ``none``: or None (off)."""
    what = f"an int{f' of {unit}' if unit else ''}, at least {minimum}" + (", or None" if none else "")
    return Rule(what, lambda value: (none and value is None) or (_is_int(value) and value >= minimum))


def positive_number(unit: str) -> Rule:
    """An int or float greater than 0, finite."""
    return Rule(f"a number of {unit} greater than 0", lambda value: _is_number(value) and value > 0)


def _timeout_pair(value: Any) -> tuple[float, float]:
    connect, read = value if isinstance(value, (tuple, list)) else (value, value)
    return (float(connect), float(read))


def _is_timeout(value: Any) -> bool:
    parts = value if isinstance(value, (tuple, list)) and len(value) == 2 else (value,)
    return all(_is_number(part) and part > 0 for part in parts)


#: What ``requests`` takes as ``timeout``: one number for both, or a (connect, read) pair.
#: ``None`` (wait forever) is refused: a hung provider would hold a worker for good.
TIMEOUT = Rule(
    "a number of seconds greater than 0, or a (connect, read) pair of them", _is_timeout, clean=_timeout_pair
)


def text(*, none: bool = False) -> Rule:
    """A str; ``none``: or None, read as ``""`` (``os.environ.get`` of an unset variable)."""
    if none:
        return Rule("a str or None", lambda value: value is None or isinstance(value, str), clean=lambda v: v or "")
    return Rule("a str", lambda value: isinstance(value, str))


def _is_names(value: object) -> bool:
    return isinstance(value, str) or (
        isinstance(value, (list, tuple)) and all(isinstance(name, str) and name for name in value)
    )


PROVIDER_NAMES = Rule("a str or a list of str", _is_names)


def _is_rates(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(scope, str) and (rates is None or isinstance(rates, str)) for scope, rates in value.items()
    )


RATES = Rule("a dict of scope names (str) to rates (str) or None", _is_rates)


def _is_amount(value: object) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite() and value >= 0
    return _is_number(value) and cast(float, value) >= 0


def _is_thresholds(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(name, str) and _is_amount(v) for name, v in value.items())


THRESHOLDS = Rule(
    "a dict of provider names (str) to amounts (int, float or Decimal, at least 0)",
    _is_thresholds,
    clean=lambda value: {name: Decimal(str(amount)) for name, amount in value.items()},
)


def _is_canonical_phone(value: object) -> bool:
    try:
        return normalize_phone(value) == value
    except InvalidPhoneNumber:
        return False


#: A list (or tuple) of phones, each already canonical: a phone in another form would never
#: equal the typed phone once normalised, and would silently do nothing.
PHONES = Rule(
    "a list of Russian mobile phones in E.164 form ('+79001234567')",
    lambda value: isinstance(value, (list, tuple)) and all(_is_canonical_phone(phone) for phone in value),
    clean=tuple,
)


def _is_push_choice(value: object) -> bool:
    return (
        value is None
        or value in ("auto", "process")
        or (isinstance(value, str) and value.startswith(("redis://", "rediss://", "unix://")))
    )


PUSH_CHOICE = Rule("'auto', 'process', a redis:// URL, or None", _is_push_choice)


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One ``CALLAUTH_<name>`` setting. As a class attribute of ``CallAuthSettings`` it reads as its value.

    ``check_id``: the system check reporting a wrong value (E006 and E011 predate E013).
    ``secret``: a wrong value is described by its type alone, never shown.
    """

    name: str
    default: T
    rule: Rule
    doc: str
    check_id: str = "callauth.E013"
    secret: bool = False

    @property
    def setting(self) -> str:
        return f"CALLAUTH_{self.name}"

    def problem(self) -> str | None:
        """What is wrong with the current value, or None when it is fine (or unset)."""
        value = getattr(django_settings, self.setting, _UNSET)
        if value is _UNSET or self.rule.accepts(value):
            return None
        shown = f"a {type(value).__name__}" if self.secret else _shorten(repr(value))
        return f"{self.setting} must be {self.rule.must_be}; it is {shown}."

    def value(self) -> T:
        """The current value, cleaned; raises ``SettingError`` naming it when the rule refuses it."""
        problem = self.problem()
        if problem is not None:
            raise SettingError(problem)
        return cast(T, self.rule.clean(getattr(django_settings, self.setting, self.default)))

    @overload
    def __get__(self, instance: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object, owner: type) -> Setting[T] | T:
        return self if instance is None else self.value()


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CallAuthSettings:
    _provider = Setting[Any](
        "PROVIDER",
        "telefon_ip",
        PROVIDER_NAMES,
        "A built-in provider's name or a provider class's dotted path, or a failover list of them.",
    )

    @property
    def PROVIDERS(self) -> list[str]:
        """``CALLAUTH_PROVIDER`` as a list: one provider, or several to fail over in order.

        Each is a built-in name (``"telefon_ip"``, ``"sms_ru"``, ``"sandbox"``) or a dotted
        path to a provider class. The first starts every flow it can.
        """
        value = self._provider
        if isinstance(value, (list, tuple)):
            return [str(name) for name in value]
        return [str(value)]

    @property
    def PROVIDER(self) -> str:
        """The first of ``PROVIDERS``: the one asked first ("" for an empty list)."""
        providers = self.PROVIDERS
        return providers[0] if providers else ""

    _webhook_base_url = Setting[str](
        "WEBHOOK_BASE_URL", "", text(none=True), "The site's public origin; when set, flows start in webhook mode."
    )

    @property
    def WEBHOOK_BASE_URL(self) -> str:
        """The site's public origin; when set, flows start in webhook mode."""
        return self._webhook_base_url.rstrip("/")

    WEBHOOK_VERIFY = Setting[bool](
        "WEBHOOK_VERIFY", True, BOOLEAN, "Ask the provider's check before trusting a webhook (invariant 2)."
    )
    TTL = Setting[int | None](
        "TTL",
        None,
        integer(1, unit="seconds", none=True),
        "Seconds a number to call is shown; None: each provider's own lifetime (starting.ttl_for).",
        check_id="callauth.E006",
    )
    COMPLETE_WINDOW = Setting[int](
        "COMPLETE_WINDOW",
        300,
        integer(1, unit="seconds"),
        "Seconds after confirmation during which the browser may finish the login.",
        check_id="callauth.E006",
    )
    CHECK_INTERVAL = Setting[int](
        "CHECK_INTERVAL",
        3,
        integer(1, unit="seconds"),
        "At most one provider check per flow per this many seconds.",
        check_id="callauth.E006",
    )
    SIGNUP = Setting[bool]("SIGNUP", False, BOOLEAN, "Create an account for a phone that has none.")
    ALLOW_STAFF = Setting[bool](
        "ALLOW_STAFF", False, BOOLEAN, "Let staff and superusers log in by call (off: caller ID can be spoofed)."
    )
    ADAPTER = Setting[str](
        "ADAPTER",
        "django_callauth.adapter.CallAuthAdapter",
        text(),
        "The dotted path of the CallAuthAdapter subclass that finds and makes users.",
    )
    _rate_limits = Setting[dict[str, str | None]](
        "RATE_LIMITS", {}, RATES, "Rate strings ('10/m,100/h') by scope, merged over the defaults."
    )

    @property
    def RATE_LIMITS(self) -> dict[str, str | None]:
        """Rate strings (``"10/m,100/h"``) by scope, the defaults merged with the setting."""
        return {**DEFAULT_RATE_LIMITS, **self._rate_limits}

    CACHE = Setting[str](
        "CACHE", "default", text(), "The CACHES alias shared by every process: rate limits, start locks, flows' state."
    )
    TRUSTED_PROXY_COUNT = Setting[int](
        "TRUSTED_PROXY_COUNT",
        0,
        integer(0),
        "How many rightmost X-Forwarded-For entries the site's own proxies added (0: none).",
        check_id="callauth.E011",
    )
    TRUSTED_CLIENT_IP_HEADER = Setting[str](
        "TRUSTED_CLIENT_IP_HEADER",
        "",
        text(none=True),
        "A header the site's proxy sets to the client's address, e.g. 'X-Real-IP' ('': none).",
    )
    SANDBOX_IN_PRODUCTION = Setting[bool](
        "SANDBOX_IN_PRODUCTION",
        False,
        BOOLEAN,
        "Let the sandbox start flows with DEBUG = False (anyone could log in as anyone).",
    )
    CLEANUP_AFTER_DAYS = Setting[int](
        "CLEANUP_AFTER_DAYS", 30, integer(0, unit="days"), "callauth_cleanup deletes finished flows older than this."
    )

    PHONE_MAX_IDLE_DAYS = Setting[int | None](
        "PHONE_MAX_IDLE_DAYS",
        90,
        integer(1, unit="days", none=True),
        "Days a phone may go without logging in (or being added) before it no longer logs in on its own "
        "(None: never; invariant 19). The adapter's is_phone_dormant reads it.",
    )
    REAUTHENTICATION_TIMEOUT = Setting[int](
        "REAUTHENTICATION_TIMEOUT",
        300,
        integer(1, unit="seconds"),
        "Seconds after a login during which the session may add or remove a phone (invariant 18).",
    )
    LOW_BALANCE = Setting[dict[str, Decimal]](
        "LOW_BALANCE",
        {},
        THRESHOLDS,
        "Per provider name, the balance below which callauth_providers alerts and failover passes it by.",
    )

    DEVICE_COOKIE_NAME = Setting[str](
        "DEVICE_COOKIE_NAME",
        "callauth_device",
        Rule("a non-empty str", lambda value: isinstance(value, str) and bool(value)),
        "The cookie naming a browser that proved a phone by a call (guards/devices.py).",
    )
    DEVICE_COOKIE_AGE = Setting[int](
        "DEVICE_COOKIE_AGE",
        365 * 86400,
        integer(1, unit="seconds"),
        "Seconds a device cookie counts after the last proof it holds (a login or a phone added).",
    )
    REVIEW_PHONES = Setting[tuple[str, ...]](
        "REVIEW_PHONES",
        (),
        PHONES,
        "Phones that log in without a call, for an app store's reviewers (providers/review.py; callauth.W006).",
    )
    APP_TOKEN_STRATEGY = Setting[str](
        "APP_TOKEN_STRATEGY",
        "django_callauth.web.app.SessionTokenStrategy",
        text(),
        "The dotted path of the class whose tokens an app client gets after logging in (web/app.py).",
    )
    PUSH = Setting[str | None](
        "PUSH",
        "auto",
        PUSH_CHOICE,
        "How the challenge page hears of the call under ASGI (flows/push.py): 'auto' (Redis pub/sub where "
        "CALLAUTH_CACHE is Django's Redis cache, this process's streams where it is per-process), "
        "'process', a redis:// URL, or None (pages poll).",
    )


def declared_settings() -> list[Setting[Any]]:
    """Every setting ``CallAuthSettings`` declares (providers declare theirs in ``settings``)."""
    return [value for value in vars(CallAuthSettings).values() if isinstance(value, Setting)]


app_settings = CallAuthSettings()
