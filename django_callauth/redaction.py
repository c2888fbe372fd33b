"""Keep the telefon-ip token out of log output.

The token sits in the provider's URL path, and ``urllib3`` logs every request path at
DEBUG ("GET /api/v1/authcalls/<token>/… HTTP/1.1"). Our own messages are redacted where
they are written; this filter is the second line of defence for everyone else's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured

from .conf import app_settings

REDACTED = "***"

#: Loggers that see provider URLs: urllib3's request log and our own.
REDACTED_LOGGERS = ("urllib3.connectionpool", "django_callauth")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    # Longest first, so a secret containing another is not left half-redacted.
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _current_token() -> str:
    try:
        return app_settings.TELEFON_IP_TOKEN
    except ImproperlyConfigured:  # a record logged before Django's settings exist
        return ""


def _redact_value(value: object, token: str) -> object:
    """A log argument without the token; non-strings only become text when they carry it."""
    if isinstance(value, str):
        return value.replace(token, REDACTED)
    text = str(value)
    return text.replace(token, REDACTED) if token in text else value


class TokenRedactingFilter(logging.Filter):
    """Replace the current ``CALLAUTH_TELEFON_IP_TOKEN`` with ``***`` in a record; never drop it.

    The token is read at filter time so a changed setting (or ``override_settings``) applies.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        token = _current_token()
        if not token:
            return True
        record.msg = _redact_value(record.msg, token)
        if isinstance(record.args, dict):
            record.args = {key: _redact_value(value, token) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact_value(value, token) for value in record.args)
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text once set: a traceback printing a URL is redacted too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = record.exc_text.replace(token, REDACTED)
        return True


def install_log_redaction() -> None:
    """Add one ``TokenRedactingFilter`` to each logger that sees provider URLs (idempotent)."""
    for name in REDACTED_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(existing, TokenRedactingFilter) for existing in log.filters):
            log.addFilter(TokenRedactingFilter())
