from django.urls import path

from .models import FlowPurpose
from .web import events, login, phones, sandbox, webhooks
from .web.app import app_view

LINK = {"purpose": FlowPurpose.LINK}

app_name = "callauth"

urlpatterns = [
    path("start/", login.start, name="start"),
    path("challenge/", login.challenge, name="challenge"),
    path("status/", login.status, name="status"),
    path("complete/", login.complete, name="complete"),
    # Server-sent events of the session's flow, under ASGI (web/events.py); polls are the fallback.
    path("events/", events.events, name="events"),
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
    path("phones/verify/events/", events.events, LINK, name="link_events"),
    path("phones/verify/complete/", phones.link_complete, name="link_complete"),
    path("phones/verify/sandbox/call/", sandbox.sandbox_call, LINK, name="link_sandbox_call"),
    # The same views for app clients: JSON only, the session in X-Session-Token, no cookies (web/app.py).
    path("app/v1/start/", app_view(login.start), name="app_start"),
    path("app/v1/status/", app_view(login.status), name="app_status"),
    path("app/v1/events/", events.app_events, name="app_events"),
    path("app/v1/complete/", app_view(login.complete, login=True), name="app_complete"),
    path("app/v1/sandbox/call/", app_view(sandbox.sandbox_call), name="app_sandbox_call"),
    path("app/v1/phones/", app_view(phones.phones), name="app_phones"),
    path("app/v1/phones/add/", app_view(phones.phone_add), name="app_phone_add"),
    path("app/v1/phones/<int:link_id>/remove/", app_view(phones.phone_remove), name="app_phone_remove"),
    path("app/v1/phones/verify/status/", app_view(login.status), LINK, name="app_link_status"),
    path("app/v1/phones/verify/events/", events.app_events, LINK, name="app_link_events"),
    path("app/v1/phones/verify/complete/", app_view(phones.link_complete), name="app_link_complete"),
    path("app/v1/phones/verify/sandbox/call/", app_view(sandbox.sandbox_call), LINK, name="app_link_sandbox_call"),
]
