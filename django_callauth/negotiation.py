"""HTML for browsers, JSON for clients that ask for it: one place decides and renders."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


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
