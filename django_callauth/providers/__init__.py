"""Provider selection by ``CALLAUTH_PROVIDER``: a built-in name or a dotted path."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..conf import app_settings
from .base import CallAuthProvider

BUILTIN_PROVIDERS = {
    "telefon_ip": "django_callauth.providers.telefon_ip.TelefonIpProvider",
    "sandbox": "django_callauth.providers.sandbox.SandboxProvider",
}


def get_provider_class(name: str | None = None) -> type[CallAuthProvider]:
    name = name or app_settings.PROVIDER
    path = BUILTIN_PROVIDERS.get(name, name)
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"CALLAUTH_PROVIDER {name!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, CallAuthProvider)):
        raise ImproperlyConfigured(f"CALLAUTH_PROVIDER {name!r} is not a CallAuthProvider subclass")
    return cls


def get_provider() -> CallAuthProvider:
    """The configured provider, built from the current settings."""
    cls = get_provider_class()
    from_settings = getattr(cls, "from_settings", None)
    return from_settings() if callable(from_settings) else cls()
