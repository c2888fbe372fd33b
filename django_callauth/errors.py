"""Every error the app answers: one code, one HTTP status, one message for the user.

An error goes out as ``{"error": code, "message": message}`` to JSON clients, or as an
HTML page to browsers (``negotiation.error_response``), always with the status its code
is registered with. ``ErrorCode`` lists every code the app can answer; ``ApiError`` is one
answer: a code and the message saying what happened this time. Every answer is defined
here once, those of the providers' errors and of the cost limits too; one that carries a
value (a wait, the methods allowed) fills it in with ``ApiError.format``. Only an invalid
phone's message comes from elsewhere: ``phones.InvalidPhoneNumber.error`` says what is wrong.
Every refusal raised on the way to a provider is a ``CallAuthRefusal`` carrying its answer.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import TypeAlias

from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy as _

#: A message: a lazily translated string (``gettext_lazy``), translated when it is rendered,
#: so into the language of the request that shows it; or a plain one already translated.
Message: TypeAlias = "str | Promise"


class ErrorCode(str, enum.Enum):  # noqa: UP042  (enum.StrEnum is Python 3.11+; 3.10 is supported)
    """Every code the app answers in ``{"error": code}``, with the HTTP status it always comes with.

    A member is the code itself (a ``str``); ``status`` is its HTTP status and ``__doc__``
    says when it is answered.
    """

    status: HTTPStatus

    def __new__(cls, code: str, status: HTTPStatus, doc: str) -> ErrorCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status
        member.__doc__ = doc
        return member

    def __str__(self) -> str:
        # The code itself, as a template or a log line shows it (not "ErrorCode.EXPIRED").
        return str(self.value)

    # -- any endpoint -------------------------------------------------------------
    METHOD_NOT_ALLOWED = (
        "method_not_allowed",
        HTTPStatus.METHOD_NOT_ALLOWED,
        "The endpoint does not answer this HTTP method; ``Allow`` lists those it does.",
    )
    CSRF_FAILED = (
        "csrf_failed",
        HTTPStatus.FORBIDDEN,
        "A POST without Django's CSRF token (cookie and ``X-CSRFToken`` header), or over HTTPS from "
        "another origin. JSON clients only: browsers get Django's own CSRF page.",
    )
    REQUEST_TOO_LARGE = (
        "request_too_large",
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "The body is larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``.",
    )
    TOO_MANY_FIELDS = (
        "too_many_fields",
        HTTPStatus.BAD_REQUEST,
        "The form body has more fields (or files) than Django's limits allow.",
    )
    INVALID_REQUEST = (
        "invalid_request",
        HTTPStatus.BAD_REQUEST,
        "The body could not be read, or is JSON but not an object.",
    )
    NOT_FOUND = (
        "not_found",
        HTTPStatus.NOT_FOUND,
        "No such thing: the sandbox is off, the phone to remove is not the user's, or a provider's "
        "webhook or callback names no flow of ours.",
    )
    SERVER_ERROR = (
        "server_error",
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "An unexpected failure (a bug, the database down) in a JSON request; it is logged and reported "
        "to the admins as Django reports any 500. Browsers get the site's 500 page.",
    )
    TEMPORARILY_UNAVAILABLE = (
        "temporarily_unavailable",
        HTTPStatus.SERVICE_UNAVAILABLE,
        "A provider's webhook or callback could not be handled now (the database failed); "
        "the provider may send it again.",
    )

    # -- starting a flow ------------------------------------------------------------
    INVALID_PHONE = (
        "invalid_phone",
        HTTPStatus.BAD_REQUEST,
        "The phone is not a Russian mobile number; the message says what is wrong with it.",
    )
    RATE_LIMITED = (
        "rate_limited",
        HTTPStatus.TOO_MANY_REQUESTS,
        "A cost limit (``CALLAUTH_RATE_LIMITS``) refused the start; ``Retry-After`` says when one fits.",
    )
    RATE_LIMITER_UNAVAILABLE = (
        "rate_limiter_unavailable",
        HTTPStatus.SERVICE_UNAVAILABLE,
        "The cache that counts the cost limits cannot answer, so no start is allowed (fails closed).",
    )
    START_IN_PROGRESS = (
        "start_in_progress",
        HTTPStatus.CONFLICT,
        "The same browser is already starting a flow (a double submit); ``Retry-After`` is 1.",
    )
    PROVIDER_ERROR = (
        "provider_error",
        HTTPStatus.BAD_GATEWAY,
        "The provider failed or answered something we cannot read; also a flow whose start failed so.",
    )
    PROVIDER_UNAVAILABLE = (
        "provider_unavailable",
        HTTPStatus.SERVICE_UNAVAILABLE,
        "The provider is not answering, is rate limiting us, or refused our credentials.",
    )
    PROVIDER_REJECTED = (
        "provider_rejected",
        HTTPStatus.BAD_GATEWAY,
        "The provider answered, but would not give a number for this phone.",
    )
    SANDBOX_DISABLED = (
        "sandbox_disabled",
        HTTPStatus.SERVICE_UNAVAILABLE,
        "The sandbox provider refuses to work with ``DEBUG = False`` (unless ``CALLAUTH_SANDBOX_IN_PRODUCTION``).",
    )

    # -- following and finishing a flow ---------------------------------------------
    NO_FLOW = (
        "no_flow",
        HTTPStatus.BAD_REQUEST,
        "This browser's session has no flow of this purpose (never started, finished, or another session).",
    )
    PUSH_UNAVAILABLE = (
        "push_unavailable",
        HTTPStatus.NOT_FOUND,
        "The events stream is not offered for this flow here (the site runs under WSGI, ``CALLAUTH_PUSH`` "
        "is ``None``, the flow's provider is followed by checks, or the broker is unreachable): poll "
        "``status_url`` instead.",
    )
    NOT_CONFIRMED = (
        "not_confirmed",
        HTTPStatus.CONFLICT,
        "Finishing a flow whose call has not been received yet.",
    )
    EXPIRED = (
        "expired",
        HTTPStatus.GONE,
        "The time to call, or to finish after the call, is up.",
    )
    ALREADY_USED = (
        "already_used",
        HTTPStatus.CONFLICT,
        "The flow was already finished (used to log in, or to add the phone).",
    )
    PHONE_MISMATCH = (
        "phone_mismatch",
        HTTPStatus.FORBIDDEN,
        "The call came from another phone than the one entered.",
    )
    NO_ACCOUNT = (
        "no_account",
        HTTPStatus.FORBIDDEN,
        "The call was confirmed, but no account has this phone and the adapter allows no signup.",
    )
    NOT_ALLOWED = (
        "not_allowed",
        HTTPStatus.FORBIDDEN,
        "The adapter refused: the account may not log in by call, or may not add this phone.",
    )
    CANCELLED = (
        "cancelled",
        HTTPStatus.CONFLICT,
        "A newer flow started in the same browser replaced this one.",
    )
    PHONE_TAKEN = (
        "phone_taken",
        HTTPStatus.CONFLICT,
        "Adding a phone that is already linked to another account.",
    )
    LOGIN_FAILED = (
        "login_failed",
        HTTPStatus.SERVICE_UNAVAILABLE,
        "Project code (the adapter) failed while logging in, or the session could not keep the login; "
        "the flow can be finished again.",
    )
    MISCONFIGURED = (
        "misconfigured",
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "A confirmed flow that no authentication backend accepted: ``CallAuthBackend`` is not installed.",
    )

    SLOW_DOWN = (
        "slow_down",
        HTTPStatus.TOO_MANY_REQUESTS,
        "The status of this flow was polled clearly faster than ``CALLAUTH_POLL_INTERVAL`` allows; "
        "``Retry-After`` says when to poll again (the answer's ``poll_after`` says how often).",
    )

    # -- the user's phones ---------------------------------------------------------
    LOGIN_REQUIRED = (
        "login_required",
        HTTPStatus.UNAUTHORIZED,
        "The phones endpoints are for logged-in users (JSON clients; browsers go to the login page).",
    )
    LAST_LOGIN_METHOD = (
        "last_login_method",
        HTTPStatus.CONFLICT,
        "Removing the phone would leave the account no way to log in (the adapter's ``may_remove_phone``).",
    )
    REAUTHENTICATION_REQUIRED = (
        "reauthentication_required",
        HTTPStatus.UNAUTHORIZED,
        "Adding or removing a phone needs a login within ``CALLAUTH_REAUTHENTICATION_TIMEOUT`` seconds: "
        "log in again, then retry. Nothing was changed.",
    )

    # -- a phone's proof ages ---------------------------------------------------------
    PHONE_DORMANT = (
        "phone_dormant",
        HTTPStatus.FORBIDDEN,
        "The call was confirmed, but the phone has not logged in for ``CALLAUTH_PHONE_MAX_IDLE_DAYS`` (its "
        "number may have been given to someone else): log in another way and add the phone again.",
    )


def _interpolate(message: Message, params: Mapping[str, object]) -> str:
    return str(message) % {name: str(value) for name, value in params.items()}


# Django's lazy strings interpolate with ``%`` at once, in the language active then; this
# waits until the message is rendered, like the rest of it.
_lazy_interpolate = lazy(_interpolate, str)


@dataclass(frozen=True)
class ApiError:
    """One error answer: its ``code`` (so its HTTP ``status``) and the ``message`` for the user.

    ``retry_after``: seconds after which trying again may work, sent as ``Retry-After``.
    """

    code: ErrorCode
    message: Message
    retry_after: int | None = None

    @property
    def status(self) -> HTTPStatus:
        return self.code.status

    def format(self, **params: object) -> ApiError:
        """This error with ``%(name)s`` placeholders of its message filled in, still translated lazily."""
        return replace(self, message=_lazy_interpolate(self.message, params))

    def json(self) -> dict[str, str]:
        """The JSON body: ``{"error": code, "message": message}``, translated now."""
        return {"error": self.code.value, "message": str(self.message)}


class CallAuthRefusal(Exception):
    """Something the person is told instead of what they asked for: ``error`` is the answer.

    The base of every refusal raised on the way to a provider: an invalid phone
    (``phones.InvalidPhoneNumber``), a start the limits refuse (``guards.limits.StartRefused``)
    and a provider's failure (``providers.base.ProviderError``, a project provider's own
    subclasses too). Views catch this one class and answer ``error`` with its code, status
    and message; nothing else about the exception reaches the user. A subclass sets
    ``error`` on the class, or passes ``error=`` for one instance.
    """

    #: The answer: its code (so its HTTP status), message and ``Retry-After``.
    error: ApiError

    def __init__(self, *args: object, error: ApiError | None = None) -> None:
        super().__init__(*args)
        if error is not None:
            self.error = error
        elif not isinstance(getattr(type(self), "error", None), ApiError):
            raise TypeError(f"{type(self).__name__} needs an error: set it on the class or pass error=")


# -- the answers that never change ------------------------------------------------------
# A code may have several, for different situations; views pick the one that says what happened.

METHOD_NOT_ALLOWED = ApiError(ErrorCode.METHOD_NOT_ALLOWED, _("This address only answers %(methods)s requests."))
CSRF_FAILED = ApiError(
    ErrorCode.CSRF_FAILED,
    _("The request was refused: send the CSRF token (the X-CSRFToken header) with the cookie."),
)
CSRF_WRONG_ORIGIN = ApiError(
    ErrorCode.CSRF_FAILED,
    _(
        "The request was refused: it does not come from this site. Over HTTPS, send an Origin "
        "(or Referer) header of this site, or one listed in CSRF_TRUSTED_ORIGINS."
    ),
)
REQUEST_TOO_LARGE = ApiError(ErrorCode.REQUEST_TOO_LARGE, _("The request is too large."))
TOO_MANY_FIELDS = ApiError(ErrorCode.TOO_MANY_FIELDS, _("The request has too many fields."))
BODY_UNREADABLE = ApiError(ErrorCode.INVALID_REQUEST, _("The request body could not be read."))
BODY_NOT_AN_OBJECT = ApiError(ErrorCode.INVALID_REQUEST, _("The request body must be a JSON object."))

NO_LOGIN_FLOW = ApiError(
    ErrorCode.NO_FLOW,
    _("There is no login by phone call in progress in this browser. Enter your phone number to start."),
)
PUSH_UNAVAILABLE = ApiError(
    ErrorCode.PUSH_UNAVAILABLE, _("Live updates are not available here. Ask the status address instead.")
)
NO_LINK_FLOW = ApiError(ErrorCode.NO_FLOW, _("No phone is being added in this browser. Enter the phone number to add."))
NOT_CONFIRMED = ApiError(
    ErrorCode.NOT_CONFIRMED, _("We have not received your call yet. Call the number shown, then try again.")
)
EXPIRED = ApiError(ErrorCode.EXPIRED, _("Time to call is up. Enter your phone number to get a new number to call."))
ALREADY_USED = ApiError(
    ErrorCode.ALREADY_USED, _("This call was already used to log in. Start again to log in once more.")
)
PHONE_MISMATCH = ApiError(
    ErrorCode.PHONE_MISMATCH,
    _("The call came from a different phone than the number you entered. Call from that phone."),
)
NO_ACCOUNT = ApiError(ErrorCode.NO_ACCOUNT, _("There is no account with this phone number."))
NOT_ALLOWED = ApiError(ErrorCode.NOT_ALLOWED, _("This account cannot log in by phone call."))
CANCELLED = ApiError(ErrorCode.CANCELLED, _("A newer login was started in this browser."))
# A flow adding a phone to an account ends for the same reasons, told as what they are there.
ALREADY_USED_LINK = ApiError(ErrorCode.ALREADY_USED, _("This call was already used to add the phone."))
NOT_ALLOWED_LINK = ApiError(ErrorCode.NOT_ALLOWED, _("This phone number cannot be added to your account."))
CANCELLED_LINK = ApiError(ErrorCode.CANCELLED, _("A newer phone number is being added in this browser."))
PHONE_TAKEN = ApiError(ErrorCode.PHONE_TAKEN, _("This phone number is already linked to another account."))
# %(wait)s: whole seconds, a number (the status poll's ``Retry-After``).
SLOW_DOWN = ApiError(ErrorCode.SLOW_DOWN, _("Checking too often. Wait %(wait)s s, then check again."))
START_FAILED = ApiError(ErrorCode.PROVIDER_ERROR, _("The phone call service failed. Please start again."))
LOGIN_FAILED = ApiError(ErrorCode.LOGIN_FAILED, _("Something went wrong while logging you in. Please try again."))
MISCONFIGURED = ApiError(ErrorCode.MISCONFIGURED, _("Login by phone call is not set up correctly on this site."))

# The cost limits (guards/limits.py): %(wait)s is ``throttling.format_wait``'s text.
RATE_LIMITED = ApiError(ErrorCode.RATE_LIMITED, _("Too many attempts to log in by phone call. Try again in %(wait)s."))
RATE_LIMITED_SITE = ApiError(
    ErrorCode.RATE_LIMITED, _("Too many people are logging in by phone call right now. Try again in %(wait)s.")
)
RATE_LIMITER_UNAVAILABLE = ApiError(
    ErrorCode.RATE_LIMITER_UNAVAILABLE,
    _("Login by phone call is temporarily unavailable. Please try again in a few minutes."),
)
START_IN_PROGRESS = ApiError(
    ErrorCode.START_IN_PROGRESS,
    _("A login by phone call is already being started in this browser. Wait a moment."),
    retry_after=1,
)

# The providers' errors (providers/base.py, providers/sandbox.py), raised while starting.
PROVIDER_FAILED = ApiError(ErrorCode.PROVIDER_ERROR, _("The phone call service failed. Please try again in a minute."))
PROVIDER_NOT_ANSWERING = ApiError(
    ErrorCode.PROVIDER_UNAVAILABLE, _("The phone call service is not answering. Please try again in a minute.")
)
PROVIDER_MISCONFIGURED = ApiError(ErrorCode.PROVIDER_UNAVAILABLE, _("Login by phone call is temporarily unavailable."))
PROVIDER_REJECTED = ApiError(
    ErrorCode.PROVIDER_REJECTED,
    _("The phone call service could not give a number for this phone. Please try again later."),
)
# SMSC's callback names only the caller: a second live flow for one phone waits (providers/smsc.py).
PROVIDER_PHONE_BUSY = ApiError(
    ErrorCode.PROVIDER_UNAVAILABLE,
    _("A login by phone call for this phone is already under way. Please try again in a few minutes."),
)
SANDBOX_DISABLED = ApiError(ErrorCode.SANDBOX_DISABLED, _("Login by phone call is not set up on this site yet."))

SANDBOX_OFF = ApiError(ErrorCode.NOT_FOUND, _("The sandbox is off: calls cannot be simulated."))
NO_SUCH_PHONE = ApiError(ErrorCode.NOT_FOUND, _("You have no such phone."))
# Read by the provider's servers, not by a person: not translated.
UNKNOWN_WEBHOOK = ApiError(ErrorCode.NOT_FOUND, "Unknown webhook.")
UNKNOWN_CALLBACK = ApiError(ErrorCode.NOT_FOUND, "Unknown callback.")
PROVIDER_REQUEST_FAILED = ApiError(ErrorCode.TEMPORARILY_UNAVAILABLE, "Temporarily unavailable; try again later.")

SERVER_ERROR = ApiError(ErrorCode.SERVER_ERROR, _("Something went wrong on our side. Please try again later."))

LOGIN_REQUIRED = ApiError(ErrorCode.LOGIN_REQUIRED, _("Log in to manage your phones."))
LAST_LOGIN_METHOD = ApiError(
    ErrorCode.LAST_LOGIN_METHOD,
    _("This is the only way to log in to your account: add another phone or set a password first."),
)

# Numbers that fell silent are given to someone else: whoever called may not be the owner.
PHONE_DORMANT = ApiError(
    ErrorCode.PHONE_DORMANT,
    _(
        "This phone number has not been used to log in for a long time, so it cannot log you in on its own. "
        "Log in another way and add the number to your account again, or contact the site's support."
    ),
)
REAUTHENTICATION_REQUIRED = ApiError(
    ErrorCode.REAUTHENTICATION_REQUIRED,
    _("For your safety, log in again before you add or remove a phone."),
)
