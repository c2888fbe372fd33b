"""HTML for browsers, JSON for clients that ask for it: one place decides and renders."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils.decorators import decorator_from_middleware
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])


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
    code: str,
    message: str,
    status: int,
    *,
    template: str = "callauth/error.html",
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """``{"error": code, "message": message}`` or the HTML page, with ``status``."""
    if wants_json(request):
        return JsonResponse({"error": code, "message": str(message)}, status=status)
    page = {"error_code": code, "error_message": message, **(context or {})}
    return render(request, template, page, status=status)


def allow_methods(*methods: str) -> Callable[[ViewFunc], ViewFunc]:
    """Like ``require_http_methods``, but a 405 is one of our errors (JSON for API clients)."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                allowed = ", ".join(methods)
                message = _("This address only answers %(methods)s requests.") % {"methods": allowed}
                response = error_response(request, "method_not_allowed", message, 405)
                response["Allow"] = allowed
                return response
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        response = super()._reject(request, reason)  # logs, and renders Django's page
        if wants_json(request):
            message = _("The request was refused: send the CSRF token (the X-CSRFToken header) with the cookie.")
            return error_response(request, "csrf_failed", message, 403)
        return response


def csrf_protect(view: ViewFunc) -> ViewFunc:
    """Django's CSRF check, with its failure answered as ``{"error": "csrf_failed"}`` to API clients.

    The view is marked exempt for the site-wide middleware, which would answer HTML,
    and checked here instead, by the same code.
    """
    return csrf_exempt(decorator_from_middleware(_CsrfCheck)(view))
