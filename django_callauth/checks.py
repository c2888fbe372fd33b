"""System checks. Ids are stable: documented in docs/reference/checks.rst, never reused."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .adapter import CallAuthAdapter

from .conf import DEFAULT_RATE_LIMITS, Setting, SettingError, app_settings, declared_settings

BACKEND_PATH = "django_callauth.backends.CallAuthBackend"
SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"

Check = Callable[..., list[CheckMessage]]


def _after_setting_values(check: Check) -> Check:
    """``check``, saying nothing while a setting it reads is wrong: ``check_setting_values`` names it."""

    @wraps(check)
    def wrapper(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
        try:
            return check(app_configs, **kwargs)
        except SettingError:
            return []

    return wrapper


@register()
def check_setting_values(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """callauth.E013 (or the older E006, E011) for each setting of the wrong type or out of range."""
    return [
        Error(problem, hint=setting.doc, id=setting.check_id)
        for setting in _every_setting()
        if (problem := setting.problem()) is not None
    ]


def _every_setting() -> list[Setting[Any]]:
    """The app's settings, then those of each configured and built-in provider."""
    from .providers import BUILTIN_PROVIDERS, get_provider_class, known_provider_classes

    try:
        classes = known_provider_classes()
    except SettingError:  # CALLAUTH_PROVIDER itself is wrong: still check the built-in ones
        classes = [get_provider_class(name) for name in BUILTIN_PROVIDERS]
    return [*declared_settings(), *(setting for cls in classes for setting in cls.settings)]


@register(Tags.security, deploy=False)
@_after_setting_values
def check_sandbox_in_production(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from .providers import get_provider_classes

    if settings.DEBUG:
        return []
    try:
        # By class, not by name: the sandbox named by its dotted path is just as open, and
        # so is a failover list that ends in it.
        simulated = [cls.name for cls in get_provider_classes() if cls.simulated]
    except ImproperlyConfigured:
        return []  # callauth.E002 says why
    if simulated:
        # Named as configured: a project's own simulated provider is not "the sandbox".
        return [
            Error(
                f"CALLAUTH_PROVIDER names a provider that simulates calls while DEBUG is False: "
                f"{', '.join(repr(name) for name in simulated)}.",
                hint="A simulated provider lets anyone log in as any phone. "
                "Use 'telefon_ip' or 'sms_ru' in production.",
                id="callauth.E001",
            )
        ]
    return []


@register()
@_after_setting_values
def check_provider(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from .providers import get_provider_classes

    try:
        provider_classes = get_provider_classes()
    except SettingError:
        raise  # not E002: check_setting_values names it
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="callauth.E002")]
    messages: list[CheckMessage] = []
    names = [cls.name for cls in provider_classes]
    if len(set(names)) != len(names):
        messages.append(
            Error(
                f"CALLAUTH_PROVIDER names a provider twice: {', '.join(names)}.",
                hint="A failover list asks each provider once; list each one once.",
                id="callauth.E012",
            )
        )
    for provider_class in provider_classes:
        for setting, how in provider_class.required_settings.items():
            if not getattr(settings, setting, ""):
                messages.append(
                    Error(
                        f"{setting} is empty.",
                        hint=f"{how}, or CALLAUTH_PROVIDER = 'sandbox' for development.",
                        id="callauth.E003",
                    )
                )
        messages.extend(provider_class.check_settings())
    base = app_settings.WEBHOOK_BASE_URL
    if base and not base.startswith("https://") and not settings.DEBUG:
        messages.append(
            Warning(
                "CALLAUTH_WEBHOOK_BASE_URL is not https.",
                hint="The webhook URL carries a secret; send it over TLS.",
                id="callauth.W001",
            )
        )
    if base and ("?" in base or "#" in base):
        messages.append(
            Error(
                "CALLAUTH_WEBHOOK_BASE_URL must be an origin without a query or fragment.",
                hint="The provider appends its own query string to the webhook URL.",
                id="callauth.E004",
            )
        )
    return messages


@register()
def check_backend_installed(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if BACKEND_PATH not in settings.AUTHENTICATION_BACKENDS:
        return [
            Error(
                f"{BACKEND_PATH} is not in AUTHENTICATION_BACKENDS.",
                hint="Add it beside ModelBackend, or confirmed calls cannot log anyone in.",
                id="callauth.E005",
            )
        ]
    return []


@register()
@_after_setting_values
def check_timings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # callauth.E006 (a timing that is no positive int) is check_setting_values' now.
    if app_settings.TTL is None:  # an unset TTL is each provider's lifetime
        return []
    return _ttl_warnings(app_settings.TTL)


def _ttl_warnings(ttl: int) -> list[CheckMessage]:
    """callauth.W002 for each configured provider whose numbers die before ``ttl`` seconds."""
    from .providers import get_provider_classes

    try:
        provider_classes = get_provider_classes()
    except ImproperlyConfigured:
        return []  # callauth.E002 says why
    return [
        Warning(
            f"CALLAUTH_TTL is longer than the provider's {cls.lifetime} seconds.",
            hint=f"{cls.name}'s numbers stop working after {cls.lifetime} seconds, so its flows end then.",
            id="callauth.W002",
        )
        for cls in provider_classes
        if ttl > cls.lifetime
    ]


@register()
def check_sessions(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if "django.contrib.sessions.middleware.SessionMiddleware" not in settings.MIDDLEWARE:
        return [
            Error(
                "django_callauth needs SessionMiddleware in MIDDLEWARE.",
                hint="A flow belongs to the browser session that started it.",
                id="callauth.E007",
            )
        ]
    if settings.SESSION_ENGINE == SIGNED_COOKIES:
        return [
            Error(
                f"SESSION_ENGINE is {SIGNED_COOKIES!r}.",
                hint="A flow is bound to a session the server can end: a planted or copied signed cookie "
                "cannot be revoked. Use a server-side engine such as 'django.contrib.sessions.backends.cached_db'.",
                id="callauth.E014",
            )
        ]
    return []


ALLAUTH_BRIDGE = "django_callauth.contrib.allauth"


@register()
def check_allauth_bridge(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """callauth.W005: allauth is installed, and logins by call would skip its stages (invariant 21)."""
    from django.apps import apps

    if not apps.is_installed("allauth.account") or apps.is_installed(ALLAUTH_BRIDGE):
        return []
    return [
        Warning(
            "django-allauth is installed, but a login by call does not go through its login "
            "pipeline: it skips allauth's stages (MFA included) and records no authentication.",
            hint=f"Add {ALLAUTH_BRIDGE!r} to INSTALLED_APPS after allauth's apps (docs: howto/allauth).",
            id="callauth.W005",
        )
    ]


@register()
@_after_setting_values
def check_adapter(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from .adapter import CallAuthAdapter

    try:
        adapter_class = import_string(app_settings.ADAPTER)
    except ImportError as exc:
        return [Error(f"CALLAUTH_ADAPTER {app_settings.ADAPTER!r} cannot be imported: {exc}", id="callauth.E008")]
    if not (isinstance(adapter_class, type) and issubclass(adapter_class, CallAuthAdapter)):
        return [
            Error(
                f"CALLAUTH_ADAPTER {app_settings.ADAPTER!r} is not a subclass of CallAuthAdapter.",
                id="callauth.E008",
            )
        ]
    return _check_signup_username(adapter_class)


def _check_signup_username(adapter_class: type[CallAuthAdapter]) -> list[CheckMessage]:
    """callauth.W004: signup would store "+79001234567" where the user model wants something else."""
    from django.contrib.auth import get_user_model
    from django.db import models

    from .adapter import CallAuthAdapter

    if not app_settings.SIGNUP or adapter_class.create_user is not CallAuthAdapter.create_user:
        return []
    if adapter_class.username_for_phone is not CallAuthAdapter.username_for_phone:
        return []
    user_model = get_user_model()
    field = user_model._meta.get_field(user_model.USERNAME_FIELD)
    fits = (
        isinstance(field, models.CharField)
        and not isinstance(field, (models.EmailField, models.URLField, models.SlugField))
        and (field.max_length or 0) >= 16
    )
    if fits:
        return []
    return [
        Warning(
            f"CALLAUTH_SIGNUP is on, and the default adapter would store a phone number in "
            f"{user_model.__name__}.{user_model.USERNAME_FIELD} ({type(field).__name__}).",
            hint="Override CallAuthAdapter.username_for_phone (or create_user) in your CALLAUTH_ADAPTER "
            "to make a username your user model accepts.",
            id="callauth.W004",
        )
    ]


@register()
@_after_setting_values
def check_rate_limits(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from .guards.limits import parse_rates

    messages: list[CheckMessage] = []
    limits = app_settings.RATE_LIMITS
    for scope, rates in limits.items():
        if scope not in DEFAULT_RATE_LIMITS:
            messages.append(
                Error(
                    f"CALLAUTH_RATE_LIMITS has an unknown scope {scope!r}.",
                    hint=f"Scopes are {', '.join(DEFAULT_RATE_LIMITS)}.",
                    id="callauth.E010",
                )
            )
            continue
        try:
            if rates is not None:
                parse_rates(rates)
        except (TypeError, ValueError, AttributeError) as exc:
            messages.append(
                Error(
                    f"CALLAUTH_RATE_LIMITS[{scope!r}] is not valid: {exc}",
                    hint="Use rates like '10/m,100/h' or '3/10m' (units s, m, h, d), or None for no limit.",
                    id="callauth.E010",
                )
            )
    if not any(rates is not None for rates in limits.values()):
        return messages
    alias = app_settings.CACHE
    backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
    if alias not in settings.CACHES or backend == "django.core.cache.backends.dummy.DummyCache":
        messages.append(
            Error(
                f"The rate limits need a working cache, and CACHES[{alias!r}] is "
                + ("missing." if alias not in settings.CACHES else "a DummyCache."),
                hint="Every start would be refused. Configure a shared cache (Redis, Memcached, database), "
                "or set CALLAUTH_CACHE to one.",
                id="callauth.E009",
            )
        )
    elif backend == "django.core.cache.backends.locmem.LocMemCache" and not settings.DEBUG:
        messages.append(
            Warning(
                f"The rate limits are counted in CACHES[{alias!r}], a per-process LocMemCache.",
                hint="Each worker process counts alone, so the limits are multiplied by the number of processes, "
                "and every status poll reads the database (another process's change never reaches this cache). "
                "Use a cache all processes share (Redis, Memcached, database).",
                id="callauth.W003",
            )
        )
    return messages


@register()
@_after_setting_values
def check_client_address(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # A negative count (callauth.E011 too) is check_setting_values'.
    if app_settings.TRUSTED_PROXY_COUNT and app_settings.TRUSTED_CLIENT_IP_HEADER:
        return [
            Error(
                "Set CALLAUTH_TRUSTED_PROXY_COUNT or CALLAUTH_TRUSTED_CLIENT_IP_HEADER, not both.",
                hint="Say either how many X-Forwarded-For entries your proxies add, or which header they set.",
                id="callauth.E011",
            )
        ]
    return []


@register(Tags.security)
@_after_setting_values
def check_review_phones(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """callauth.W006: phones that log in without a call, on a production site."""
    from .phones import mask_phone

    phones = app_settings.REVIEW_PHONES
    if settings.DEBUG or not phones:
        return []
    return [
        Warning(
            f"CALLAUTH_REVIEW_PHONES lets {len(phones)} phone(s) log in without a call: "
            f"{', '.join(mask_phone(phone) for phone in phones)}.",
            hint="Anyone who knows one logs in as its account. Keep the list empty except while "
            "an app store reviews the app, and the accounts free of anything of value.",
            id="callauth.W006",
        )
    ]
