"""Two bare views, the yardsticks of the status poll's speed (benchmarks/polls.py).

They do the least a poll could: ``session`` loads the browser's session and answers a tiny
JSON; ``session-row`` also loads the session's flow by primary key. How the status poll
compares with them, served by the same server in the same run, says what the app's own
code costs. Mounted under ``/bench/`` only with ``EXAMPLE_BENCHMARK_VIEWS=1``: they are
not part of any real site.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache

from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow


@never_cache  # as the status poll: its answers must never be cached either
def session_only(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "pending", "flow": bool(request.session.get(SESSION_FLOW_KEY))})


@never_cache
def session_row(request: HttpRequest) -> HttpResponse:
    flow_id = request.session.get(SESSION_FLOW_KEY)
    flow = CallAuthFlow.objects.filter(pk=flow_id).first() if flow_id else None
    return JsonResponse({"status": flow.status if flow else "none", "flow": flow is not None})


urlpatterns = [
    path("bench/session/", session_only, name="bench_session"),
    path("bench/session-row/", session_row, name="bench_session_row"),
]
