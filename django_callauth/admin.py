"""Admin: flows read-only (they are an audit trail), phones editable. No secret is shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from .models import CallAuthFlow, CallAuthPhone
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
    # webhook_secret_hash is left out on purpose; next_url is user input, shown as text.
    fields = (
        "phone",
        "purpose",
        "call_to",
        "provider",
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
