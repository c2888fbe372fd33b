"""The metrics in Prometheus's text format, for a project that routes them itself.

Not in the app's URLconf: where the numbers are exposed, and to whom (a network the
scraper alone reaches, a token), is the project's decision. Only staff with
``callauth.view_callauthflow`` see them through this view.
"""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


@permission_required("callauth.view_callauthflow", raise_exception=True)
def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
