"""Provider selection by ``CALLAUTH_PROVIDER``: a built-in name or a dotted path, or a list of them.

A list is a failover order (flows/start.py): the first provider starts every flow it can. A
flow then stays with the provider that started it, found again by the name stored on
the flow (``provider_named``), even after the settings changed.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables

from ..conf import app_settings
from .base import CallAuthProvider

BUILTIN_PROVIDERS = {
    "telefon_ip": "django_callauth.providers.telefon_ip.TelefonIpProvider",
    "sms_ru": "django_callauth.providers.sms_ru.SmsRuProvider",
    "smsc": "django_callauth.providers.smsc.SmscProvider",
    "sandbox": "django_callauth.providers.sandbox.SandboxProvider",
}


def get_provider_class(name: str | None = None) -> type[CallAuthProvider]:
    """The class ``name`` (default: the first configured provider) stands for."""
    name = name or app_settings.PROVIDER
    path = BUILTIN_PROVIDERS.get(name, name)
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"CALLAUTH_PROVIDER {name!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, CallAuthProvider)):
        raise ImproperlyConfigured(f"CALLAUTH_PROVIDER {name!r} is not a CallAuthProvider subclass")
    return cls


def get_provider_classes() -> list[type[CallAuthProvider]]:
    """Every configured provider's class, in failover order; raises ``ImproperlyConfigured``."""
    names = app_settings.PROVIDERS
    if not names:
        raise ImproperlyConfigured("CALLAUTH_PROVIDER is an empty list.")
    return [get_provider_class(name) for name in names]


def get_provider() -> CallAuthProvider:
    """The first configured provider, built from the current settings."""
    return get_provider_class().from_settings()


def get_providers() -> list[CallAuthProvider]:
    """Every configured provider, in failover order, built from the current settings."""
    return [cls.from_settings() for cls in get_provider_classes()]


def known_provider_classes() -> list[type[CallAuthProvider]]:
    """The configured providers' classes, then every built-in one; those that cannot load are left out."""
    classes: list[type[CallAuthProvider]] = []
    for name in [*app_settings.PROVIDERS, *BUILTIN_PROVIDERS]:
        try:
            cls = get_provider_class(name)
        except ImproperlyConfigured:
            continue  # callauth.E002 says why
        if cls not in classes:
            classes.append(cls)
    return classes


def provider_named(name: str) -> CallAuthProvider | None:
    """The provider whose ``name`` a flow stored, or None when no configured or built-in one has it."""
    for cls in known_provider_classes():
        if cls.name == name:
            return cls.from_settings()
    return None


@sensitive_variables("secrets")
def current_secrets() -> tuple[str, ...]:
    """Every non-empty secret of every configured and built-in provider, read from the settings now."""
    try:
        classes = known_provider_classes()
    except ImproperlyConfigured:  # a record logged before Django's settings exist
        return ()
    secrets: list[str] = []
    for cls in classes:
        try:
            secrets.extend(secret for secret in cls.secrets() if secret)
        except ImproperlyConfigured:  # one provider's unreadable setting leaks no other provider's secret
            continue
    return tuple(secrets)
