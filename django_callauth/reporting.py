"""Django's error reports without webhook secrets or phone numbers (docs/security.rst, invariants 9 and 16).

When a request fails, Django reports it (the admins' mail of ``AdminEmailHandler``, and with
``DEBUG`` the error page) with its URL and query string, ``request.META``, the POST fields
and every frame's local variables. A webhook's path carries its flow's secret, and the
provider appends the caller's number (``?phone=…``); a phone form posts ``phone``. Django's
``SafeExceptionReporterFilter`` hides settings and what ``sensitive_variables`` and
``sensitive_post_parameters`` mark, but not these. Set both, in the project's settings::

    DEFAULT_EXCEPTION_REPORTER_FILTER = "django_callauth.reporting.CallAuthExceptionReporterFilter"
    DEFAULT_EXCEPTION_REPORTER = "django_callauth.reporting.CallAuthExceptionReporter"

The filter hides them where Django asks a filter (``META``, POST, frame variables); the
reporter also in what Django renders without asking one (the URL, the query string, the
exception's text), by scrubbing the finished report. Like Django's filter, both do nothing
while ``DEBUG`` is on.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import FrameType
from typing import Any

from django.http import HttpRequest, QueryDict
from django.template.defaultfilters import pprint
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from .guards.redaction import scrub_request_text

#: Request fields that carry a phone: the phone forms' ``phone``, the sandbox's ``caller``,
#: and the provider's ``phone`` appended to a webhook's query string.
PHONE_PARAMETERS = ("phone", "caller")
#: A shorter value tells nothing, and hiding it everywhere would blank out half the report.
_MIN_HIDDEN_LENGTH = 4


def _request_values(request: HttpRequest | None) -> list[str]:
    """The values of this request to hide wherever they appear: its webhook secret, its phones."""
    if request is None:
        return []
    values: list[str] = []
    match = getattr(request, "resolver_match", None)
    if match is not None and match.app_name == "callauth" and match.url_name == "webhook":
        values.append(str(match.kwargs.get("secret", "")))
    fields: list[QueryDict] = [request.GET]
    try:
        fields.append(request.POST)
    except Exception:  # an unreadable body: it is what failed, and Django reports it without POST
        pass
    for query in fields:
        for name in PHONE_PARAMETERS:
            values.extend(query.getlist(name))
    # Longest first, so a value containing another is not left half-hidden.
    return sorted({value for value in values if len(value) >= _MIN_HIDDEN_LENGTH}, key=len, reverse=True)


def scrub(text: str, values: Iterable[str], substitute: str) -> str:
    """``text`` without ``values`` (each replaced by ``substitute``), webhook secrets or phone numbers."""
    for value in values:
        text = text.replace(value, substitute)
    return scrub_request_text(text)


class _Shown:
    """A frame variable as the report prints it (its repr), scrubbed."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class CallAuthExceptionReporterFilter(SafeExceptionReporterFilter):
    """``SafeExceptionReporterFilter`` that also hides webhook secrets and phones from ``META``, POST and frames."""

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta: dict[str, Any] = super().get_safe_request_meta(request)
        if not self.is_active(request):
            return meta
        values = _request_values(request)
        return {
            key: scrub(value, values, self.cleansed_substitute) if isinstance(value, str) else value
            for key, value in meta.items()
        }

    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        post = super().get_post_parameters(request)
        if request is None or not self.is_active(request) or not any(name in post for name in PHONE_PARAMETERS):
            return post
        cleansed = post.copy()
        for name in PHONE_PARAMETERS:
            if name in cleansed:
                cleansed[name] = self.cleansed_substitute
        return cleansed

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: FrameType) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        if not self.is_active(request):
            return variables
        values = _request_values(request)
        shown = []
        for name, value in variables:
            text = pprint(value)  # what the report prints: a request's repr has its path
            cleaned = scrub(text, values, self.cleansed_substitute)
            shown.append((name, value if cleaned == text else _Shown(cleaned)))
        return shown


class CallAuthExceptionReporter(ExceptionReporter):
    """Django's report with webhook secrets and phones scrubbed from all of it: URL, query string, exception text.

    Works with any filter; with ``CallAuthExceptionReporterFilter`` the POST fields are hidden
    by name too.
    """

    def _scrubbed(self, report: SafeString, *, html: bool) -> SafeString:
        if not self.filter.is_active(self.request):
            return report
        values = _request_values(self.request)
        if html:
            values = sorted({*values, *(str(escape(value)) for value in values)}, key=len, reverse=True)
        # Still safe: only text is replaced, by stars and digits.
        return mark_safe(scrub(report, values, SafeExceptionReporterFilter.cleansed_substitute))

    def get_traceback_text(self) -> SafeString:
        return self._scrubbed(super().get_traceback_text(), html=False)

    def get_traceback_html(self) -> SafeString:
        return self._scrubbed(super().get_traceback_html(), html=True)
