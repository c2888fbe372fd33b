"""HTML for browsers, JSON for clients that ask for it: one place decides and renders."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils.decorators import decorator_from_middleware
from django.utils.log import log_response
from django.views.decorators.clickjacking import xframe_options_deny
from django.views.decorators.csrf import csrf_exempt

from .. import errors
from ..conf import SettingError
from ..errors import ApiError

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])

logger = logging.getLogger("django_callauth")


def wants_json(request: HttpRequest) -> bool:
    """Whether the client prefers JSON (``Accept: application/json``) over HTML."""
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def request_data(request: HttpRequest) -> dict[str, Any] | None:
    """POSTed fields from a form or a JSON object body; None when the body is unusable."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
            # Lone surrogates ("\ud800") are valid JSON but can be neither stored nor rendered.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested beyond the stack
            return None
        return data if isinstance(data, dict) else None
    return {key: request.POST.get(key) for key in request.POST}


def error_response(
    request: HttpRequest,
    error: ApiError,
    *,
    template: str = "callauth/error.html",
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """``{"error": code, "message": message}`` or the HTML page ``template``, with the error's status.

    The page gets ``error_code`` and ``error_message`` besides ``context``. An error that
    says when to try again gets ``Retry-After`` either way.
    """
    response: HttpResponse
    if wants_json(request):
        response = JsonResponse(error.json(), status=error.status)
    else:
        page = {"error_code": error.code.value, "error_message": error.message, **(context or {})}
        response = render(request, template, page, status=error.status)
    if error.retry_after:
        response["Retry-After"] = str(error.retry_after)
    return response


def allow_methods(*methods: str) -> Callable[[ViewFunc], ViewFunc]:
    """Like ``require_http_methods``, but a 405 is one of our errors (JSON for API clients)."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                allowed = ", ".join(methods)
                response = error_response(request, errors.METHOD_NOT_ALLOWED.format(methods=allowed))
                response["Allow"] = allowed
                return response
            try:
                return view(request, *args, **kwargs)
            except SettingError as exc:
                # gunicorn never ran callauth.E013: a wrong setting is this defined answer, not a crash.
                logger.error("A setting is wrong (manage.py check names it): %s", exc)
                return error_response(request, errors.MISCONFIGURED)

        return wrapper  # type: ignore[return-value]

    return decorator


#: What Django answers with a 4xx of its own: passed on to its handler, never a 500 of ours.
_DJANGO_ANSWERS = (Http404, PermissionDenied, SuspiciousOperation, BadRequest, MultiPartParserError)


def json_server_errors(view: ViewFunc) -> ViewFunc:
    """An unexpected exception in ``view`` is ``server_error`` (500) to a JSON client, reported as Django does.

    Django would answer its HTML 500 page, which a client of the JSON API cannot read. The
    failure still reaches whoever watches for it as for any 500: ``got_request_exception``
    is sent (error trackers listen to it) and ``django.request`` logs "Internal Server Error:
    <path>" at ERROR with the traceback and the request (the admins' mail, through the
    project's exception reporter filter). HTML clients get Django's own 500 path unchanged.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except _DJANGO_ANSWERS:
            raise
        except Exception as exc:
            if not wants_json(request):
                raise
            response = error_response(request, errors.SERVER_ERROR)
            got_request_exception.send(sender=None, request=request)
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request, exception=exc
            )
            return response

    return wrapper  # type: ignore[return-value]


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        response: HttpResponse = super()._reject(request, reason)  # type: ignore[misc]  # private in the stubs; logs, renders Django's page
        if wants_json(request):
            # Django's reasons are English prose; the one that needs another fix is where the
            # request came from (HTTPS checks Origin, then Referer, against the site's host).
            from_elsewhere = reason.startswith(("Origin checking failed", "Referer checking failed"))
            return error_response(request, errors.CSRF_WRONG_ORIGIN if from_elsewhere else errors.CSRF_FAILED)
        return response


#: What Django raises reading a body it refuses. ValueError: a Content-Length that is not a number.
_UNREADABLE_BODY = (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
    MultiPartParserError,
    BadRequest,
    UnreadablePostError,
    ValueError,
)


def _read_body(request: HttpRequest) -> None:
    """Read and parse the body now, so Django's limits raise here, not in a later reader.

    Once read, the CSRF check (``request.POST``) and the view (``request_data``) get
    Django's cached copy. A form body is parsed (field count and size limits); any other
    body is read whole (size limit). Reading ``request.body`` before parsing a multipart
    body would count uploaded files against the in-memory limit, so it is not done.
    """
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        request.POST  # noqa: B018  (the access parses)
    else:
        request.body  # noqa: B018  (the access reads)


def _unreadable_body_response(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Our error for a body Django refused, logged where Django's own handler logs it."""
    # A later look at request.POST (a template, a middleware) would raise again; Django's
    # own handler does the same.
    request._mark_post_parse_error()  # type: ignore[attr-defined]
    if isinstance(exc, RequestDataTooBig):
        # 413, not Django's 400: the body itself is the problem, as a proxy's
        # client_max_body_size would say, so a client knows resending it cannot work.
        response = error_response(request, errors.REQUEST_TOO_LARGE)
    elif isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        response = error_response(request, errors.TOO_MANY_FIELDS)
    else:
        response = error_response(request, errors.BODY_UNREADABLE)
    # The loggers Django would use, so logging set up for them (a silenced
    # django.security.RequestDataTooBig, an alert on django.request) still applies.
    if isinstance(exc, SuspiciousOperation):
        security_logger = logging.getLogger(f"django.security.{type(exc).__name__}")
        log_response(str(exc), response=response, request=request, logger=security_logger, level="error")
    else:
        log_response("Bad request (unreadable body): %s", request.path, response=response, request=request)
    return response


def read_body_first(view: ViewFunc) -> ViewFunc:
    """Read the body before ``view``; a body Django refuses is answered with our error, never a 500.

    Django would answer its bare HTML 400 page (to JSON clients too), or a 500 for a broken
    connection or Content-Length. Reading first also makes every endpoint refuse an
    oversized body alike, whether or not its view reads the body.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            _read_body(request)
        except _UNREADABLE_BODY as exc:
            return _unreadable_body_response(request, exc)
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def csrf_protect(view: ViewFunc) -> ViewFunc:
    """Django's CSRF check, with its failure answered as ``{"error": "csrf_failed"}`` to API clients.

    The view is marked exempt for the site-wide middleware, which would answer HTML,
    and checked here instead, by the same code. The check reads ``request.POST``, so the
    body is read first (``read_body_first``): its errors get our answer too.
    """
    checked: ViewFunc = decorator_from_middleware(_CsrfCheck)(view)  # type: ignore[assignment]  # same signature
    return csrf_exempt(read_body_first(checked))


def endpoint(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """What every page and JSON endpoint of the app is wrapped in, once: no framing (clickjacking),
    JSON for a JSON client's unexpected failure, and ``methods`` only (405 otherwise)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        return xframe_options_deny(json_server_errors(allow_methods(*methods)(view)))

    return decorate
