"""HTTP plumbing every provider client shares: limits, one pooled session, errors without secrets.

Reading what came back (statuses, ids, texts, JSON) is answers.py; the pooled session,
session.py.

Provider credentials may sit in URLs (telefon-ip's token is in the path), and
``requests``/``urllib3`` put URLs into their exception texts and debug logs.
So: no frame that raises holds the full URL, every exception of ours is raised outside
``except`` blocks (no ``__context__`` chaining back to a ``requests`` error), and what we
log names the URL with the secret replaced by ``***`` (the caller's ``where``).

An exception we do not expect still reaches Django's error report (the admins' email),
which lists every frame's local variables. So every function here that holds a secret or
a URL is marked with ``sensitive_variables``, and ``_send`` hides *all* locals: Django
applies a frame's nearest marked caller to it, and every ``requests``/``urllib3`` frame
below ``_send`` holds the full URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import urllib3.exceptions
from django.views.decorators.debug import sensitive_variables

from ..guards.redaction import redact
from . import answers
from .base import (
    ProviderConfigurationError,
    ProviderError,
    ProviderMalformedAnswer,
    ProviderRateLimited,
    ProviderUnavailable,
)
from .session import session

logger = logging.getLogger("django_callauth")

#: No answer of a provider API is near this size; a larger body is a proxy page or an attack.
MAX_BODY_BYTES = 64 * 1024
_CHUNK_BYTES = 8192
DEFAULT_TIMEOUT = (3.05, 5.0)
DEFAULT_DEADLINE = 10.0
#: A retry needs at least this much of the deadline left to be worth it.
_MIN_RETRY_SECONDS = 0.5

# Module-level so tests can move time without patching the ``time`` module for everyone.
_clock: Callable[[], float] = time.monotonic

T = TypeVar("T")


def now() -> float:
    """The monotonic clock deadlines are reckoned on (``_clock``, so tests can move it)."""
    return _clock()


@dataclass(frozen=True)
class Reply:
    """An answer whose HTTP status is 2xx or 4xx, its body read within the limits."""

    status: int
    body: bytes


class HttpClient:
    """One provider's requests: timeouts, a total deadline, a size cap, one error classifier.

    ``vendor`` names the provider in messages ("telefon-ip"), ``credential`` names what a
    401 refused ("API token"), ``url_setting`` is the setting holding its base URL.
    """

    @sensitive_variables("secrets")
    def __init__(
        self,
        *,
        vendor: str,
        credential: str,
        url_setting: str,
        secrets: tuple[str, ...],
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self.vendor = vendor
        self.credential = credential
        self.url_setting = url_setting
        self._secrets = secrets
        self.timeout = timeout
        self.deadline = deadline

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.vendor}>"

    def deadline_at(self) -> float:
        return now() + self.deadline

    @sensitive_variables("url", "params", "data", "json_body", "headers")
    def request(
        self,
        method: str,
        url: str,
        where: str,
        deadline_at: float,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        json_body: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request, classified: a 2xx or 4xx ``Reply``; raises only our own exceptions.

        ``where`` is what logs show of the request: its method and URL, secrets replaced.
        A secret goes in ``url``, ``params``, ``data`` or ``headers``, never in ``where``
        (which is redacted of the client's ``secrets`` all the same).
        """
        where = redact(where, self._secrets)
        outcome = self._send(
            method, url, where, deadline_at, dict(params=params, data=data, json=json_body, headers=headers)
        )
        if isinstance(outcome, ProviderError):
            raise outcome
        with outcome:
            answers.classify_status(outcome.status_code, where, self.vendor, self.credential)
            return Reply(outcome.status_code, self._read_body(outcome, deadline_at, where))

    def retry_once(self, attempt: Callable[[], T], deadline_at: float, where: str) -> T:
        """``attempt()``, and once more after ``ProviderUnavailable`` when the deadline leaves room.

        Only for safe requests (a check): a start may have been billed. Not after a 429,
        which a retry would only deepen. Retried outside the except block, so a second
        failure does not chain to the first.
        """
        try:
            return attempt()
        except ProviderRateLimited:
            raise
        except ProviderUnavailable as exc:
            failure = exc
        if deadline_at - now() < _MIN_RETRY_SECONDS:
            raise failure
        logger.info("%s %s: retrying once", self.vendor, where)
        return attempt()

    def _read_body(self, response: requests.Response, deadline_at: float, where: str) -> bytes:
        """The body, read as it arrives (``read1``), within the size limit and the total deadline.

        The read timeout bounds each socket read, not the whole body: a server trickling one
        byte a second would never trip it, so the deadline is checked between reads.
        """
        vendor = self.vendor
        chunks: list[bytes] = []
        size = 0
        failure: ProviderError | None = None
        try:
            while chunk := response.raw.read1(_CHUNK_BYTES, decode_content=True):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    logger.warning("%s %s: body larger than %s bytes", vendor, where, MAX_BODY_BYTES)
                    failure = ProviderMalformedAnswer(f"{vendor} sent an oversized answer.")
                    break
                if now() > deadline_at:
                    logger.warning("%s %s: deadline passed while reading the body", vendor, where)
                    failure = ProviderUnavailable(f"{vendor} answered too slowly.")
                    break
                chunks.append(chunk)
        except urllib3.exceptions.DecodeError:
            logger.warning("%s %s: body could not be decompressed", vendor, where)
            failure = ProviderMalformedAnswer(f"{vendor} sent an undecodable answer.")
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            logger.warning("%s %s: read timed out in the body", vendor, where)
            failure = ProviderUnavailable(f"{vendor} stopped answering mid-answer.")
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            logger.warning("%s %s: connection broke while reading the body", vendor, where)
            failure = ProviderUnavailable(f"{vendor}'s answer was cut off.")
        if failure is not None:
            raise failure  # outside the except block: no chained requests/urllib3 exception
        return b"".join(chunks)

    @sensitive_variables()  # all: the requests/urllib3 frames below hold the URL in many names
    def _send(
        self,
        method: str,
        url: str,
        where: str,
        deadline_at: float,
        parts: dict[str, Any],
    ) -> requests.Response | ProviderError:
        """The response with its body unread, or the error to raise (returned, never raised here)."""
        vendor = self.vendor
        remaining = deadline_at - now()
        if remaining <= 0:
            logger.warning("%s %s: no time left before the deadline", vendor, where)
            return ProviderUnavailable(f"{vendor} request skipped: deadline passed.", no_call_set_up=True)
        connect, read = self.timeout
        error: ProviderError
        try:
            return session().request(
                method,
                url,
                **parts,
                timeout=(min(connect, remaining), min(read, remaining)),
                stream=True,
                allow_redirects=False,
            )
        except requests.exceptions.ConnectTimeout:
            # The connection was never made, so the request never left: nothing was set up.
            reason, error = "timed out", ProviderUnavailable(f"{vendor} did not answer in time.", no_call_set_up=True)
        except requests.Timeout:
            reason, error = "timed out", ProviderUnavailable(f"{vendor} did not answer in time.")
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ):
            reason = "invalid URL"
            error = ProviderConfigurationError(f"{self.url_setting} is not a valid URL.")
        except requests.ConnectionError as exc:
            reason = "connection failed"
            error = ProviderUnavailable(f"{vendor} cannot be reached.", no_call_set_up=_never_connected(exc))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
            reason, error = "request failed", ProviderUnavailable(f"The request to {vendor} failed.")
        logger.warning("%s %s: %s", vendor, where, reason)
        return error


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether the connection failed before any byte of the request was sent.

    Refused connections and DNS failures reach requests as a ``MaxRetryError`` whose reason
    is a ``NewConnectionError``, raised only while connecting. TLS errors are not counted:
    urllib3 reports one from reading the answer's headers the same way as one from the
    handshake. A connection dropped after the request was sent is a ``ProtocolError``.
    """
    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        return isinstance(reason.reason, urllib3.exceptions.NewConnectionError)
    return False
