"""Admin: flows read-only (they are an audit trail), phones editable. No secret is shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from . import stats
from .models import CallAuthFlow, CallAuthPhone, FailureReason
from .phones import MAX_INPUT_LENGTH, InvalidPhoneNumber, normalize_phone

if TYPE_CHECKING:  # generic in the type stubs only, not at run time
    FlowAdminBase = admin.ModelAdmin[CallAuthFlow]
    PhoneAdminBase = admin.ModelAdmin[CallAuthPhone]
    PhoneFormBase = forms.ModelForm[CallAuthPhone]
else:
    FlowAdminBase = PhoneAdminBase = admin.ModelAdmin
    PhoneFormBase = forms.ModelForm


@admin.register(CallAuthFlow)
class CallAuthFlowAdmin(FlowAdminBase):
    list_display = ["phone", "purpose", "status", "failure_reason", "call_to", "provider", "created_at", "user"]
    list_filter = ["purpose", "status", "failure_reason", "provider"]
    search_fields = ["phone", "call_to", "provider_id"]
    date_hierarchy = "created_at"
    change_list_template = "admin/django_callauth/callauthflow/change_list.html"
    # webhook_secret_hash is left out on purpose; next_url is user input, shown as text.
    fields = (
        "phone",
        "purpose",
        "call_to",
        "provider",
        "first_provider",
        "provider_id",
        "status",
        "failure_reason",
        "caller",
        "user",
        "next_url",
        "created_at",
        "expires_at",
        "webhook_received_at",
        "last_checked_at",
        "confirmed_at",
        "finished_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        dashboard = path(
            "dashboard/",
            self.admin_site.admin_view(self.dashboard_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_dashboard",
        )
        return [dashboard, *super().get_urls()]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """The numbers of the last days, per provider: for staff who may view flows (stats.py)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        board = stats.dashboard(stats.bounded_days(request.GET.get("days")))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Call logins by provider"),
            "board": board,
            "window": len(board.days),
            "sections": [_section(provider) for provider in board.providers],
        }
        return TemplateResponse(request, "admin/django_callauth/callauthflow/dashboard.html", context)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float


@dataclass(frozen=True)
class Chart:
    """A bar chart of starts and logins per day, drawn by the template as inline SVG.

    Server-side geometry: the admin's pages need no script, and a strict CSP allows it.
    """

    width: int
    height: int
    top: int
    bottom: float
    bar_width: float
    peak: int
    starts: list[Bar]
    used: list[Bar]
    first_day: str
    last_day: str


CHART_WIDTH, CHART_HEIGHT, CHART_LEFT, CHART_TOP, CHART_FOOT = 900, 160, 40, 10, 20


def _chart(provider: stats.ProviderStats) -> Chart:
    peak = max([counts.starts for _, counts in provider.days] + [1])
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_FOOT
    slot = (CHART_WIDTH - CHART_LEFT) / len(provider.days)
    bar_width = slot * 0.4

    def bar(index: int, value: int, shift: float) -> Bar:
        height = plot_height * value / peak
        return Bar(CHART_LEFT + index * slot + shift, CHART_TOP + plot_height - height, height)

    return Chart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        top=CHART_TOP,
        bottom=CHART_TOP + plot_height,
        bar_width=bar_width,
        peak=peak,
        starts=[bar(i, counts.starts, slot * 0.1) for i, (_, counts) in enumerate(provider.days)],
        used=[bar(i, counts.used, slot * 0.5) for i, (_, counts) in enumerate(provider.days)],
        first_day=provider.days[0][0].isoformat(),
        last_day=provider.days[-1][0].isoformat(),
    )


def _section(provider: stats.ProviderStats) -> dict[str, Any]:
    """One provider's part of the page: its totals, chart, and a row per day, newest first.

    Only the failure reasons that occurred in the window get a column.
    """
    reasons = [reason for reason in FailureReason if provider.total.failed.get(reason)]
    return {
        "stats": provider,
        "chart": _chart(provider),
        "reasons": [reason.label for reason in reasons],
        "total_failed": [provider.total.failed[reason] for reason in reasons],
        "rows": [
            (day, counts, [counts.failed.get(reason, 0) for reason in reasons])
            for day, counts in reversed(provider.days)
        ],
    }


class CallAuthPhoneForm(PhoneFormBase):
    # Normalised on the form, before the model's 16-character limit sees "+7 (900) 123-45-67".
    phone = forms.CharField(label=CallAuthPhone._meta.get_field("phone").verbose_name, max_length=MAX_INPUT_LENGTH)

    class Meta:
        model = CallAuthPhone
        fields = "__all__"

    def clean_phone(self) -> str:
        try:
            return normalize_phone(self.cleaned_data["phone"])
        except InvalidPhoneNumber as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(CallAuthPhone)
class CallAuthPhoneAdmin(PhoneAdminBase):
    form = CallAuthPhoneForm
    list_display = ["phone", "user", "created_at", "last_login_at"]
    search_fields = ["phone"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "last_login_at"]
