"""Keep every provider's secrets out of log output.

Each provider declares its secrets (``CallAuthProvider.secrets()``: telefon-ip's token,
sms.ru's api_id); those of every configured and every built-in provider are redacted. The
telefon-ip token sits in its URL path, and urllib3 writes URLs into log records: every
request line at DEBUG (``"GET /api/v1/authcalls/<token>/… HTTP/1.1"``), and, at WARNING with
no DEBUG needed, ``"Failed to parse headers (url=…)"`` with the full URL whenever an answer
has a malformed header line. Our own messages are redacted where they are written; this is
the second line of defence, for everyone else's.

Why two mechanisms, installed together by :func:`install_log_redaction`:

* A ``logging.Filter`` on a logger only sees records logged *on that logger*: a record
  propagated from a child (``urllib3.connection`` up to ``urllib3``) skips it. Filters on
  every existing logger still miss loggers created later (``urllib3.http2.connection`` and
  ``urllib3.contrib.*`` appear when first imported). So the log record factory is wrapped
  (``logging.setLogRecordFactory``, chaining whatever factory was installed before): every
  record is made through it, whatever its logger, level, handlers or propagation, and records
  of the redacted hierarchies come out of it redacted.
* The factory is one global that any other code may replace without chaining ours. So every
  logger of those hierarchies that exists at install time (urllib3's and requests' own,
  imported first for that) also gets a :class:`TokenRedactingFilter`: a fallback for them.

Redacting a record twice is harmless, so both may run on one record. Only the ``urllib3``,
``requests`` and ``django_callauth`` hierarchies are redacted: finding the token means turning
non-string log arguments into text, and doing that to every record of the process would run
the ``__str__`` of whatever anyone logs (a model's may query the database).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

REDACTED = "***"

#: Logger hierarchies that see provider URLs: the HTTP client stack and our own.
REDACTED_HIERARCHIES = ("urllib3", "requests", "django_callauth")


@sensitive_variables("secrets", "secret")
def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    # Longest first, so a secret containing another is not left half-redacted.
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def is_redacted_logger(name: str) -> bool:
    """Whether records of the logger ``name`` are redacted (it is in a redacted hierarchy)."""
    return any(name == root or name.startswith(root + ".") for root in REDACTED_HIERARCHIES)


@sensitive_variables("secrets")
def current_secrets() -> tuple[str, ...]:
    """Every non-empty secret of every configured and built-in provider, read from the settings now."""
    from .providers import known_provider_classes

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


@sensitive_variables("secrets")
def _redact_value(value: object, secrets: tuple[str, ...]) -> object:
    """A log argument without the secrets; non-strings only become text when they carry one."""
    if isinstance(value, str):
        return redact(value, secrets)
    try:
        text = str(value)
    except Exception:  # a broken __str__ must not make a logging call raise into its caller
        return value
    return redact(text, secrets) if any(secret in text for secret in secrets) else value


@sensitive_variables("secrets")
def redact_record(record: logging.LogRecord, secrets: tuple[str, ...]) -> None:
    """Replace each of ``secrets`` with ``***`` in everything of ``record`` a formatter prints."""
    record.msg = _redact_value(record.msg, secrets)
    if isinstance(record.args, dict):
        record.args = {key: _redact_value(value, secrets) for key, value in record.args.items()}
    elif isinstance(record.args, tuple):
        record.args = tuple(_redact_value(value, secrets) for value in record.args)
    if record.exc_info and not record.exc_text:
        # Formatters reuse exc_text once set: a traceback printing a URL is redacted too.
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text, secrets)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets)


class TokenRedactingFilter(logging.Filter):
    """Replace every provider secret (``current_secrets()``) with ``***`` in a record; never drop it.

    The secrets are read at filter time so a changed setting (or ``override_settings``) applies.
    """

    @sensitive_variables("secrets")
    def filter(self, record: logging.LogRecord) -> bool:
        secrets = current_secrets()
        if secrets:
            redact_record(record, secrets)
        return True


class RedactingRecordFactory:
    """A log record factory that redacts the records of the redacted hierarchies it makes.

    It calls the factory it wraps first, so a factory installed before ours keeps working.
    """

    def __init__(self, wrapped: Callable[..., logging.LogRecord]) -> None:
        self.wrapped = wrapped

    @sensitive_variables("secrets")
    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.wrapped(*args, **kwargs)
        if is_redacted_logger(record.name):
            secrets = current_secrets()
            if secrets:
                redact_record(record, secrets)
        return record


def install_log_redaction() -> None:
    """Redact the secrets from every record of the redacted hierarchies (idempotent).

    Wraps the log record factory once, and adds one ``TokenRedactingFilter`` to each
    existing logger of those hierarchies (see the module docstring for why both).
    """
    import requests  # noqa: F401  (imports urllib3 too: their loggers exist before the loop)

    if not isinstance(logging.getLogRecordFactory(), RedactingRecordFactory):
        logging.setLogRecordFactory(RedactingRecordFactory(logging.getLogRecordFactory()))
    for root in REDACTED_HIERARCHIES:
        logging.getLogger(root)  # the hierarchy's top logger, even before anything logs on it
    for name, log in list(logging.Logger.manager.loggerDict.items()):
        # Placeholders (a name only ever seen as a parent) become loggers later: the factory covers them.
        if not isinstance(log, logging.Logger) or not is_redacted_logger(name):
            continue
        if not any(isinstance(existing, TokenRedactingFilter) for existing in log.filters):
            log.addFilter(TokenRedactingFilter())
