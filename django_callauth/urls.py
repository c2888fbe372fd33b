from django.urls import path

from .models import FlowPurpose
from .web import login, phones, sandbox, webhooks

LINK = {"purpose": FlowPurpose.LINK}

app_name = "callauth"

urlpatterns = [
    path("start/", login.start, name="start"),
    path("challenge/", login.challenge, name="challenge"),
    path("status/", login.status, name="status"),
    path("complete/", login.complete, name="complete"),
    path("webhook/<uuid:flow_id>/<str:secret>/", webhooks.webhook, name="webhook"),
    # One URL per provider with an account-wide callback, registered in its account by hand.
    path("callback/<str:provider_name>/", webhooks.callback, name="callback"),
    # Always routed, so URLs never depend on settings at import; the view answers
    # 404 unless the sandbox provider is configured.
    path("sandbox/call/", sandbox.sandbox_call, name="sandbox_call"),
    # A logged-in user's phones; adding one is verified by a call, like a login.
    path("phones/", phones.phones, name="phones"),
    path("phones/add/", phones.phone_add, name="phone_add"),
    path("phones/<int:link_id>/remove/", phones.phone_remove, name="phone_remove"),
    path("phones/verify/", login.challenge, LINK, name="link_challenge"),
    path("phones/verify/status/", login.status, LINK, name="link_status"),
    path("phones/verify/complete/", phones.link_complete, name="link_complete"),
    path("phones/verify/sandbox/call/", sandbox.sandbox_call, LINK, name="link_sandbox_call"),
]
