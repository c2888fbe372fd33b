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

Django's own request loggers (``django.request``'s "Internal Server Error: <path>",
``django.server``'s request lines) print paths and query strings: a webhook's path carries
its flow's secret, and the provider appends the caller's number to it (``?phone=…``). Those
are no configured secret, so their records get :func:`scrub_request_text` instead, on their
string arguments only (the same caution). The webhook answers its own failures, so this is
a second line of defence (docs/security.rst, invariants 9 and 16).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.views.decorators.debug import sensitive_variables

from ..phones import mask_phone, parse_provider_phone

REDACTED = "***"

#: Logger hierarchies that see provider URLs: the HTTP client stack and our own.
REDACTED_HIERARCHIES = ("urllib3", "requests", "django_callauth")
#: Django's loggers that print request paths and request lines.
REQUEST_LOGGERS = ("django.request", "django.server")

# The webhook's path ends "webhook/<flow id>/<secret>/" (urls.py), under whatever prefix.
_WEBHOOK_SECRET = re.compile(r"(/webhook/[0-9A-Fa-f-]{36}/)[^/?#&\s'\"]+")
# A parameter that carries a phone, in a query string or a form body: its value as sent.
_PHONE_PARAMETER = re.compile(r"(?<![\w])((?:phone|caller)=)[^&;#\s'\"]+")
# Ten to fifteen digits, maybe with the separators people type, standing alone: a phone number
# in any of its forms (+7…, 8…, a national 9…, another country's). Runs glued to letters (a
# UUID, a hash) or to a colon (a date and time, 2026-12-03 13:22) are left alone.
_PHONE_LIKE = re.compile(r"(?<![\w+:-])\+?\d(?:[ \-().\u00a0]{0,2}\d){9,14}(?![\w:-])")


@sensitive_variables("secrets", "secret")
def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    # Longest first, so a secret containing another is not left half-redacted.
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _masked_number(match: re.Match[str]) -> str:
    canonical = parse_provider_phone(match.group())
    if canonical is not None:
        return mask_phone(canonical)
    digits = re.sub(r"\D", "", match.group())
    return "*" * (len(digits) - 2) + digits[-2:]


def mask_phone_numbers(text: str) -> str:
    """``text`` with every run of digits that could be a phone number masked, as log lines show phones.

    A Russian number reads as ``phones.mask_phone`` shows it (``+7 900 ***-**-67``); any other
    keeps its last two digits. For text we do not control: a provider's error may echo a number.
    """
    return _PHONE_LIKE.sub(_masked_number, text)


def scrub_request_text(text: str) -> str:
    """``text`` without webhook secrets, ``phone``/``caller`` parameter values and phone numbers.

    For what describes a request (a path, a request line, a query string, a request's repr):
    ``/callauth/webhook/<id>/<secret>/?phone=79001234567`` becomes
    ``/callauth/webhook/<id>/***/?phone=***``; the flow id stays, to tell requests apart.
    """
    text = _WEBHOOK_SECRET.sub(r"\g<1>" + REDACTED, text)
    text = _PHONE_PARAMETER.sub(r"\g<1>" + REDACTED, text)
    return mask_phone_numbers(text)


def is_redacted_logger(name: str) -> bool:
    """Whether records of the logger ``name`` are redacted (it is in a redacted hierarchy)."""
    return any(name == root or name.startswith(root + ".") for root in REDACTED_HIERARCHIES)


# Where the secrets come from: the providers, which know theirs (``install_log_redaction``
# is handed ``providers.current_secrets``), so this module, below them, imports none of them.
_secret_source: Callable[[], tuple[str, ...]] = tuple


def current_secrets() -> tuple[str, ...]:
    """Every secret to redact now, as the installed source reads them from the settings."""
    return _secret_source()


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


def _rewrite_record(
    record: logging.LogRecord, rewrite_value: Callable[[object], object], rewrite_text: Callable[[str], str]
) -> None:
    """Rewrite everything of ``record`` a formatter prints: the message, each argument, the traceback."""
    record.msg = rewrite_value(record.msg)
    if isinstance(record.args, dict):
        record.args = {key: rewrite_value(value) for key, value in record.args.items()}
    elif isinstance(record.args, tuple):
        record.args = tuple(rewrite_value(value) for value in record.args)
    if record.exc_info and not record.exc_text:
        # Formatters reuse exc_text once set: a traceback printing a URL is rewritten too.
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = rewrite_text(record.exc_text)
    if record.stack_info:
        record.stack_info = rewrite_text(record.stack_info)


@sensitive_variables("secrets")
def redact_record(record: logging.LogRecord, secrets: tuple[str, ...]) -> None:
    """Replace each of ``secrets`` with ``***`` in everything of ``record`` a formatter prints."""
    _rewrite_record(record, lambda value: _redact_value(value, secrets), lambda text: redact(text, secrets))


def _scrub_string(value: object) -> object:
    return scrub_request_text(value) if isinstance(value, str) else value


def scrub_request_record(record: logging.LogRecord) -> None:
    """``scrub_request_text`` on a record's message, string arguments and traceback."""
    _rewrite_record(record, _scrub_string, scrub_request_text)


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
    """A log record factory that redacts the records of the redacted hierarchies it makes,
    and scrubs those of Django's request loggers (``REQUEST_LOGGERS``).

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
        elif record.name in REQUEST_LOGGERS:
            scrub_request_record(record)
        return record


def install_log_redaction(secrets: Callable[[], tuple[str, ...]]) -> None:
    """Redact what ``secrets()`` answers from every record of the redacted hierarchies (idempotent).

    Wraps the log record factory once, and adds one ``TokenRedactingFilter`` to each
    existing logger of those hierarchies (see the module docstring for why both).
    """
    import requests  # noqa: F401  (imports urllib3 too: their loggers exist before the loop)

    global _secret_source
    _secret_source = secrets

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
